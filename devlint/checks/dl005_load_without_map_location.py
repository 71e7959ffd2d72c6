"""DL005: a checkpoint loaded without `map_location` goes back to the GPU it was saved from."""

from __future__ import annotations

import ast
import re

from devlint.static.engine import Check
from devlint.findings import Applicability
from devlint.static import launchers, placement, runtimes, values, walk
from devlint.static.context import FileContext
from devlint.static.names import argument, keyword, passes_unknown_args


class LoadWithoutMapLocation(Check):
    code = "DL005"

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        name = ctx.qualname(node.func)
        if name in placement.loaders():
            position = placement.loaders()[name]
        elif _lightning_checkpoint_load(node, ctx):
            name, position = f"{ctx.text(node.func)}", 1
        else:
            return
        location = argument(node, "map_location", position)
        none_with_cuda = _none_with_cuda(location, ctx) if location is not None else None
        if location is not None and not (isinstance(location, ast.Constant) and location.value is None) and none_with_cuda is None:
            if not _none_unless_passed(location, ctx):
                return
        if location is None and passes_unknown_args(node):
            return
        if ctx.visible_devices_set_before(node):
            return  # only the chosen GPU is visible: cuda:0, where checkpoints are usually saved from, is that GPU
        if not self._becomes_state(node, ctx):
            return  # data the code only reads (eval results, a list of boxes): see _becomes_state
        if ctx.index.saved_only_from_cpu(placement.path_key(node.args[0] if node.args else None)):
            return  # the project wrote this file from CPU values: loading it touches no GPU
        if ctx.in_dataset():
            return  # a dataset's own data: see the rule's rationale
        if self._cpu_checkpoint_key(node, ctx) is not None:
            return  # a checkpoint layout whose writer saves CPU tensors (BasicSR's `params_ema`)
        if self._local_copy_of_download(node, ctx) or self._opened_from_url(node, ctx):
            return  # the published file, which the rule leaves to the runtime: see the rule's rationale
        short = name.rsplit(".", 1)[-1] if name.startswith("torch.hub") else name
        if none_with_cuda is not None:
            message = (
                f"`{short}`'s `map_location` is None whenever CUDA is available (`{ctx.text(none_with_cuda)}`): on a GPU "
                "machine each tensor goes back to the device it was saved from (usually cuda:0)"
            )
            ctx.report(self.code, node, message, ctx.display_only(self.code, CUDA_NONE_ADVICE))
            return
        message = f"`{short}` without `map_location` puts each tensor back on the device it was saved from (usually cuda:0)"
        if name.endswith(".load_from_checkpoint"):
            message += f", and moves the module there too ({_LIGHTNING})"
        if location is not None and not isinstance(location, ast.Constant):
            message = (
                f"`{short}`'s `map_location` is `{ctx.text(location)}`, a parameter that defaults to None: a caller that "
                "omits it puts each tensor back on the device it was saved from (usually cuda:0)"
            )
            fix = ctx.display_only(self.code, PARAMETER_ADVICE.format(ctx.text(location)))
            ctx.report(self.code, node, message, fix)
            return
        ctx.report(self.code, node, message, self._fix(node, ctx))

    def _becomes_state(self, node: ast.Call, ctx: FileContext) -> bool:
        """Does the loaded value become model or program state: loaded into a module
        (`load_state_dict`), made a parameter or an attribute, moved to a device, returned,
        or put where devlint cannot follow it? A checkpoint is what training saves from a GPU;
        a file whose content the code only reads (indexes, compares, hands to a plotting or
        array function) is data, which is saved from the CPU as nearly always as published
        weights are (the reason this rule leaves `load_state_dict_from_url` to the runtime)."""
        function = ctx.scope.function
        root = function.node if function is not None else ctx.tree
        return _reaches_state(node, root, self._parents(ctx), set(), self._own_functions(root, ctx))

    def _own_functions(self, root: ast.AST, ctx: FileContext) -> frozenset[str]:
        """Names of the functions this file defines (at module level or inside `root`): a
        load handed to one of them (`load_state_dict(convert(torch.load(p)))`) is followed
        through its result, not taken as read by a library."""
        return ctx.memo(f"DL005 own functions {id(root)}", lambda: frozenset(
            n.name for body in (ctx.tree.body, [root]) for statement in body for n in (
                walk.nodes(statement) if statement is root else [statement]
            ) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n is not root
        ))

    def _cpu_checkpoint_key(self, node: ast.Call, ctx: FileContext) -> str | None:
        """The key of a checkpoint layout written from the CPU (catalog `cpu_checkpoint_keys`)
        that the loaded value is read by: `torch.load(p)["params_ema"]`, or a name it is
        assigned to and then indexed by, or tested for, such a key."""
        keys = placement.cpu_checkpoint_keys()
        parents = self._parents(ctx)
        parent = parents.get(id(node))
        if isinstance(parent, ast.Subscript) and parent.value is node:
            return _constant(parent.slice, keys, ctx.scope)
        if not (isinstance(parent, ast.Assign) and parent.value is node):
            return None
        names = {t.id for t in parent.targets if isinstance(t, ast.Name)}
        function = ctx.scope.function
        for read in walk.nodes(function.node if function is not None else ctx.tree):
            if isinstance(read, ast.Subscript) and isinstance(read.value, ast.Name) and read.value.id in names:
                found = _constant(read.slice, keys, ctx.scope)
            elif isinstance(read, ast.Compare) and len(read.comparators) == 1 and isinstance(read.ops[0], ast.In):
                target = read.comparators[0]
                found = _constant(read.left, keys) if isinstance(target, ast.Name) and target.id in names else None
            else:
                continue
            if found is not None:
                return found
        return None

    def _opened_from_url(self, node: ast.Call, ctx: FileContext) -> bool:
        """Is the file read one opened from a URL (`with open_url(url) as f: torch.jit.load(f)`,
        `urlopen`)? A published file, as a download is."""
        source = node.args[0] if node.args else None
        if not isinstance(source, ast.Name):
            return False
        return any(
            isinstance(item.optional_vars, ast.Name) and item.optional_vars.id == source.id
            and isinstance(item.context_expr, ast.Call) and "url" in _name_of(item.context_expr.func).lower()
            for item in runtimes.with_items(ctx)
        )

    def _local_copy_of_download(self, node: ast.Call, ctx: FileContext) -> bool:
        """Is this load one branch of `if ...: w = load_state_dict_from_url(URL) else:
        w = torch.load(path)`? The path is a local copy of the published file (face-alignment's
        and Wav2Lip's detectors take one to work offline): the same weights, treated alike
        downstream, so the load gets the same verdict as the download."""
        assign = self._parents(ctx).get(id(node))
        if not (isinstance(assign, ast.Assign) and assign.value is node):
            return False
        names = {t.id for t in assign.targets if isinstance(t, ast.Name)}
        branch = self._parents(ctx).get(id(assign))
        if not names or not isinstance(branch, ast.If):
            return False
        other = branch.orelse if any(s is assign for s in branch.body) else branch.body
        downloads = placement.downloads()
        return any(
            isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Call)
            and ctx.qualname(n.value.func) in downloads
            and any(isinstance(t, ast.Name) and t.id in names for t in n.targets)
            for statement in other
            for n in walk.nodes(statement)
        )

    def _parents(self, ctx: FileContext) -> dict:
        function = ctx.scope.function
        root = function.node if function is not None else ctx.tree
        return ctx.memo(f"DL005 parents {id(root)}", lambda: walk.parents(root))

    def _fix(self, node: ast.Call, ctx: FileContext):
        found = ctx.suggest_device(node)
        value = found.expr if found else '"cpu"'
        explicit_none = keyword(node, "map_location")
        if explicit_none is not None:
            edit = ctx.replace(explicit_none.value, value)
        elif len(node.args) > 1:
            return ctx.display_only(self.code, f"pass `map_location={value}`")
        else:
            edit = ctx.add_keyword(node, f"map_location={value}")
        where = f"onto `{found.expr}`" if found else "onto the CPU (move to the device afterwards)"
        return ctx.fix(self.code, f"Load {where}: `map_location={value}`", edit, applicability=Applicability.UNSAFE)


CHECK = LoadWithoutMapLocation()

_LIGHTNING = (
    "Lightning 2.x core/saving.py: `_default_map_location` keeps a tensor's saved device while CUDA is available, "
    "and `_load_from_checkpoint` ends with `model.to(device)` of the first tensor's device"
)


def _lightning_checkpoint_load(node: ast.Call, ctx: FileContext) -> bool:
    """`Module.load_from_checkpoint(path)` of a LightningModule subclass (the project's, known
    by the index's bases): a `torch.load` whose `map_location` is the second argument."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr == "load_from_checkpoint"):
        return False
    owner = ctx.qualname(func.value)
    if not owner:
        return False
    bases = launchers.lightning_modules()
    return owner in bases or any(base in bases for base in ctx.index.ancestors(owner))


def _constant(expr: ast.expr, keys: frozenset[str], scope=None) -> str | None:
    """The key `expr` is, when it is one of `keys`: a literal, or a name every text of which is."""
    if isinstance(expr, ast.Constant):
        return expr.value if expr.value in keys else None
    texts = values.texts(expr, scope) if scope is not None and isinstance(expr, ast.Name) else None
    return min(texts) if texts and texts <= keys else None


# The advice of a finding whose map_location is a parameter defaulting to None: the selected
# stage knows such a finding by it, and drops it when every call in the project passes it.
PARAMETER_ADVICE = "give `{}` a default such as \"cpu\", or pass it at every call"
CUDA_NONE_ADVICE = "map to the device the program was given, or to \"cpu\" and move the model after, on GPU machines too"
_PARAMETER = re.compile(r"give `(\w+)` a default such as ")


def unpassed_parameter(finding) -> str | None:
    """The parameter a finding's `map_location` is, when that is what it reports."""
    found = _PARAMETER.match(finding.fix.message) if finding.fix is not None else None
    return found.group(1) if found else None


def _none_with_cuda(location: ast.expr, ctx: FileContext) -> ast.IfExp | None:
    """`map_location` that is None whenever CUDA is available: `None if
    torch.cuda.is_available() else "cpu"`, written there or the one value of a name
    (video-retalking's `_load`). A GPU machine then loads as if none were given."""
    if isinstance(location, ast.Name):
        assigned = ctx.assigned(location)
        if len(assigned) != 1:
            return None
        location = assigned[0]
    if not isinstance(location, ast.IfExp):
        return None
    test, with_cuda = location.test, location.body
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test, with_cuda = test.operand, location.orelse
    chosen = (
        isinstance(test, ast.Call) and ctx.qualname(test.func) == "torch.cuda.is_available"
        and isinstance(with_cuda, ast.Constant) and with_cuda.value is None
    )
    return location if chosen else None


def _none_unless_passed(location: ast.expr, ctx: FileContext) -> bool:
    """Is `map_location` a parameter of the enclosing function that defaults to None and is
    never assigned, so every caller that omits it loads without one?"""
    function = ctx.scope.function
    if not isinstance(location, ast.Name) or function is None:
        return False
    default = function.defaults.get(location.id)
    return (
        isinstance(default, ast.Constant) and default.value is None
        and location.id not in function.assigns
    )


# Calls that make a value model state, or move it to a device.
_STATE_SINKS = frozenset({
    "load_state_dict", "load_weights", "set_state_dict", "Parameter", "register_buffer", "register_parameter",
    "copy_", "set_", "to", "cuda", "update",
})
# Calls that keep a value in a container, where devlint does not follow it.
_KEEPS = frozenset({"append", "extend", "insert", "add", "setdefault", "put", "dict", "list"})
_DEPTH = 4


def _name_of(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _reaches_state(node: ast.AST, root: ast.AST, parents: dict, followed: set[str], own: frozenset[str]) -> bool:
    """Does the value of `node` flow into model state (see _becomes_state)? Unknown flows count;
    a call of one of the file's `own` functions passes it on to that call's result."""
    parent = parents.get(id(node))
    if isinstance(parent, ast.Subscript) and parent.value is node:
        return _reaches_state(parent, root, parents, followed, own)  # `ckpt["state_dict"]` goes on
    if isinstance(parent, ast.Attribute) and parent.value is node:
        grand = parents.get(id(parent))
        if isinstance(grand, ast.Call) and grand.func is parent:
            if parent.attr == "numpy":
                return False  # `.numpy()` raises on a CUDA tensor: the file holds CPU data
            return parent.attr in _STATE_SINKS or parent.attr in ("items", "values") or _reaches_state(grand, root, parents, followed, own)
        return _reaches_state(parent, root, parents, followed, own)
    if isinstance(parent, ast.keyword):
        parent = parents.get(id(parent))
    if isinstance(parent, ast.Call) and parent.func is not node:
        if isinstance(parent.func, ast.Name) and parent.func.id in own:
            return _reaches_state(parent, root, parents, followed, own)
        return _name_of(parent.func) in _STATE_SINKS | _KEEPS  # another function's input is read, not kept
    if isinstance(parent, ast.IfExp) and parent.test is not node:
        return _reaches_state(parent, root, parents, followed, own)  # `load(p) if cuda else load(p, map_location="cpu")`
    if isinstance(parent, (ast.Compare, ast.If, ast.IfExp, ast.Assert, ast.FormattedValue, ast.BinOp, ast.UnaryOp)):
        return isinstance(parent, (ast.BinOp, ast.UnaryOp)) and _reaches_state(parent, root, parents, followed, own)
    if isinstance(parent, ast.Assign) and parent.value is node and all(isinstance(t, ast.Name) for t in parent.targets):
        if isinstance(root, ast.Module) or len(followed) >= _DEPTH:
            return True  # a module's names may be imported elsewhere
        names = {t.id for t in parent.targets} - followed
        followed = followed | names
        reads = [r for r in walk.nodes(root) if isinstance(r, ast.Name) and r.id in names and isinstance(r.ctx, ast.Load)]
        if not reads and names:
            return True  # loaded and never read: nothing says it is not a checkpoint
        return any(_reaches_state(read, root, parents, followed, own) for read in reads)
    return True  # returned, stored in an attribute or a container, iterated: followed no further
