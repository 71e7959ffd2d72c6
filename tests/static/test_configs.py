"""Classes that a project's YAML configs build (ldm's `target:`/`params:`, Hydra's `_target_:`):
what the configs are read as, and DL012 at a device default that a config leaves out."""

import json
import textwrap
from pathlib import Path

from devlint.static import configs

LDM_CONFIG = textwrap.dedent("""\
    model:
      target: ldm.models.diffusion.LatentDiffusion
      params:
        cond_stage_config:
          target: ldm.modules.encoders.FrozenCLIPEmbedder
          params:
            version: openai/clip-vit-large-patch14
        first_stage_config:
          target: ldm.models.autoencoder.AutoencoderKL
""")

ENCODER = textwrap.dedent('''\
    import torch
    from transformers import CLIPTokenizer


    class FrozenCLIPEmbedder(torch.nn.Module):
        def __init__(self, version="openai/clip-vit-large-patch14", device="cuda", max_length=77):
            super().__init__()
            self.tokenizer = CLIPTokenizer.from_pretrained(version)
            self.device = device

        def forward(self, text):
            return self.tokenizer(text, return_tensors="pt")["input_ids"].to(self.device)
''')


def test_an_ldm_config_builds_each_target_with_the_keys_of_its_params():
    found = configs.builds("configs/v1.yaml", LDM_CONFIG)
    assert [(b.target, b.where, sorted(b.given)) for b in found] == [
        ("ldm.models.diffusion.LatentDiffusion", "configs/v1.yaml:2", ["cond_stage_config", "first_stage_config"]),
        ("ldm.modules.encoders.FrozenCLIPEmbedder", "configs/v1.yaml:5", ["version"]),
        ("ldm.models.autoencoder.AutoencoderKL", "configs/v1.yaml:9", []),
    ]


def test_empty_params_pass_nothing():
    text = "model:\n  target: pkg.enc.Encoder\n  params:\n"
    assert [(b.target, b.given) for b in configs.builds("empty.yaml", text)] == [("pkg.enc.Encoder", frozenset())]


def test_a_hydra_target_takes_the_keys_beside_it():
    text = "encoder:\n  _target_: pkg.enc.Encoder\n  device: cuda:1\n  _recursive_: false\n"
    assert [(b.target, sorted(b.given)) for b in configs.builds("conf.yaml", text)] == [("pkg.enc.Encoder", ["device"])]


def test_params_merged_from_elsewhere_or_unreadable_yaml_build_nothing_devlint_would_guess():
    merged = "base: &base\n  version: x\nmodel:\n  target: pkg.enc.Encoder\n  params:\n    <<: *base\n"
    assert configs.builds("merged.yaml", merged) == []
    assert configs.builds("broken.yaml", "model:\n  target: pkg.enc.Encoder\n  params: [unclosed\n") == []
    assert configs.builds("plain.yaml", "lr: 0.1\nbatch_size: 4\n") == []


def _project(tmp_path, params: str):
    (tmp_path / "ldm" / "modules").mkdir(parents=True)
    for package in ("ldm", "ldm/modules"):
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "ldm" / "modules" / "encoders.py").write_text(ENCODER)
    (tmp_path / "configs").mkdir()
    config = LDM_CONFIG.replace("version: openai/clip-vit-large-patch14", params)
    (tmp_path / "configs" / "v1.yaml").write_text(config)


def _findings(run_devlint, tmp_path, *extra):
    code, out, err = run_devlint("check", ".", "--output-format", "json", *extra, cwd=tmp_path)
    assert code in (0, 1), err
    return [(f["code"], Path(f["filename"]).relative_to(tmp_path).as_posix(), f["location"]["row"], f["message"]) for f in json.loads(out)]


def test_a_device_default_that_a_config_leaves_out_is_reported_at_the_default(run_devlint, tmp_path):
    _project(tmp_path, "version: openai/clip-vit-large-patch14")
    [(code, filename, row, message)] = _findings(run_devlint, tmp_path, "--no-cache")
    assert (code, filename, row) == ("DL012", "ldm/modules/encoders.py", 6)
    assert "configs/v1.yaml:5" in message and "`device`" in message


def test_a_config_that_passes_the_device_is_quiet(run_devlint, tmp_path):
    _project(tmp_path, "device: cuda:1")
    assert _findings(run_devlint, tmp_path, "--no-cache") == []


def test_a_cached_result_follows_an_edit_to_the_config(run_devlint, tmp_path):
    _project(tmp_path, "version: openai/clip-vit-large-patch14")
    assert [f[0] for f in _findings(run_devlint, tmp_path)] == ["DL012"]
    config = tmp_path / "configs" / "v1.yaml"
    config.write_text(config.read_text().replace("version: openai/clip-vit-large-patch14", "device: cuda:1"))
    assert _findings(run_devlint, tmp_path) == []
    config.write_text(LDM_CONFIG)
    assert [f[0] for f in _findings(run_devlint, tmp_path)] == ["DL012"]
