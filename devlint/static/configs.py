"""Which of the project's classes and functions its YAML configs build, and with which arguments.

ldm-style projects (CompVis stable-diffusion, ControlNet, generative-models and the video
models built on them) make their models from YAML: `target: ldm.modules.encoders.modules.
FrozenCLIPEmbedder` beside a `params:` mapping, which `instantiate_from_config` passes as
`get_obj_from_str(config["target"])(**config.get("params", {}))`. Hydra's `_target_:` takes
its arguments from the keys beside it (`hydra.utils.instantiate`). A parameter the mapping
leaves out keeps its Python default, as in a call that omits it: a build is a call.

Configs are read as YAML node trees (PyYAML's composer, no tags constructed, nothing
executed), so each build keeps the line its target is written on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A file worth parsing names a target; the others (dataset lists, hyper-parameters) are skipped unparsed.
_NAMES_A_TARGET = re.compile(r"^\s*-?\s*_?target_?\s*:", re.MULTILINE)
_DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")


@dataclass(frozen=True)
class ConfigBuild:
    """A config entry that builds `target` with the arguments named `given`."""

    target: str  # the dotted name written in the config
    where: str  # "path:line" of the target
    given: frozenset[str]


def builds(display: str, text: str) -> list[ConfigBuild]:
    """The builds a config file writes out; [] for a file that names no target or is not YAML."""
    if not _NAMES_A_TARGET.search(text):
        return []
    import yaml  # only for a project with a config that names a target

    try:  # libyaml's parser when PyYAML was built with it: the same nodes, several times faster
        loader = yaml.CSafeLoader
    except AttributeError:  # pragma: no cover - a PyYAML without libyaml
        loader = yaml.SafeLoader
    try:
        documents = list(yaml.compose_all(text, Loader=loader))
    except (yaml.YAMLError, ValueError, RecursionError):
        return []  # not YAML devlint can read: it builds nothing devlint knows of
    found: list[ConfigBuild] = []
    for document in documents:
        if document is not None:
            _collect(document, display, found, yaml)
    return found


def _collect(node, display: str, found: list[ConfigBuild], yaml) -> None:
    """Every build in `node` (a yaml.Node), depth first (iteratively: configs nest deeply).
    `yaml`: the module, imported by `builds` only once a file names a target."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.SequenceNode):
            stack.extend(reversed(current.value))
        elif isinstance(current, yaml.MappingNode):
            build = _build(current, display, yaml)
            if build is not None:
                found.append(build)
            stack.extend(reversed([value for _, value in current.value]))


def _build(mapping, display: str, yaml) -> ConfigBuild | None:
    entries = {key.value: value for key, value in mapping.value if isinstance(key, yaml.ScalarNode)}
    for key, arguments in (("target", "params"), ("_target_", None)):
        target = entries.get(key)
        if not isinstance(target, yaml.ScalarNode) or not _DOTTED.match(str(target.value)):
            continue
        if arguments is None:
            given = frozenset(k for k in entries if not k.startswith("_"))
        else:
            params = entries.get(arguments)
            if isinstance(params, yaml.ScalarNode) and params.tag.endswith(":null"):
                params = None  # `params:` left empty: no arguments
            if params is not None and not isinstance(params, yaml.MappingNode):
                return None  # params from an anchor merge or a reference: not written out here
            given = frozenset(k.value for k, _ in params.value if isinstance(k, yaml.ScalarNode)) if params is not None else frozenset()
            if params is not None and any(isinstance(k, yaml.ScalarNode) and k.value == "<<" for k, _ in params.value):
                return None  # merged from elsewhere (`<<: *defaults`): what it holds is not read
        return ConfigBuild(str(target.value), f"{display}:{target.start_mark.line + 1}", given)
    return None
