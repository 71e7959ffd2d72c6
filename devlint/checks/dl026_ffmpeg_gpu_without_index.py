"""DL026: a GPU video encoder or decoder (ffmpeg NVENC/NVDEC and its wrappers) without a GPU index."""

from __future__ import annotations

import ast
import re

from devlint.static import entry_points, runtimes
from devlint.static.context import FileContext
from devlint.static.engine import Check
from devlint.static.names import argument, keyword, passes_unknown_args

_NVENC = re.compile(r"(?:h264|hevc|av1)_nvenc|nvenc(?:_h264|_hevc)?")
# The options that take the video codec: an NVENC name after one of them is an encoder choice
# (a bare list of codec names is not a command).
_CODEC_FLAGS = frozenset({"-c:v", "-vcodec", "-codec:v", "-c", "-codec", "-c:V"})
# `auto` tries the decoder's hardware configurations in turn and creates the first device that
# opens, with no name: on an NVIDIA host that is CUDA (NVDEC) device 0.
_HWACCEL_GPU = frozenset({"cuda", "nvdec", "cuvid", "auto"})
_CODEC_KEYWORDS = ("vcodec", "codec", "c", "c:v", "video_codec")
# In a command string: an NVENC codec, and `-hwaccel cuda`.
_NVENC_IN_TEXT = re.compile(r"(?<![\w-])(?:h264|hevc|av1)_nvenc\b")
_HWACCEL_IN_TEXT = re.compile(r"-hwaccel\s+(?:cuda|nvdec|cuvid|auto)\b")


class FfmpegGpuWithoutIndex(Check):
    code = "DL026"

    # --- argument lists: ["ffmpeg", ..., "-c:v", "h264_nvenc", ...] ---------------------

    def visit_List(self, node: ast.List | ast.Tuple, ctx: FileContext) -> None:
        strings = [e.value if isinstance(e, ast.Constant) and isinstance(e.value, str) else None for e in node.elts]
        if not any(strings) or self._masked(node, ctx):
            return
        for i, text in enumerate(strings):
            if text is None:
                continue
            if _NVENC.fullmatch(text) and i > 0 and strings[i - 1] in _CODEC_FLAGS and not self._flag_given(ctx, "-gpu"):
                self._report_list(node.elts[i], ctx, f"NVENC encoder `{text}` without `-gpu`", "-gpu")
            elif text in _HWACCEL_GPU and i > 0 and strings[i - 1] == "-hwaccel" and not self._flag_given(ctx, "-hwaccel_device"):
                self._report_list(node.elts[i], ctx, f"`-hwaccel {text}` without `-hwaccel_device`", "-hwaccel_device")

    visit_Tuple = visit_List

    def _report_list(self, element: ast.Constant, ctx: FileContext, what: str, flag: str) -> None:
        message = f"ffmpeg's {what} runs on GPU 0 (its first CUDA device), whatever GPU the program was told to use"
        index = runtimes.gpu_index(ctx, element)
        if index is None:
            fix = ctx.display_only(self.code, f"add `\"{flag}\", str(index)` after it: {entry_points.manual_step(ctx, f'`{flag}`')}")
        else:
            quote = ctx.text(element)[0]
            added = f", {quote}{flag}{quote}, str({index.expr})"
            fix = ctx.fix(self.code, f"Add `{flag}` with {index.why}", ctx.insert_after(element, added), *index.edits)
        ctx.report(self.code, element, message, fix)

    def _flag_given(self, ctx: FileContext, flag: str) -> bool:
        """Does the enclosing function (or module) write `flag` anywhere? Command lists are
        often built in pieces (`cmd += ["-gpu", str(i)]`)."""
        scope = ctx.scope.function or ctx.module_scope
        given = ctx.memo(f"DL026 strings {id(scope.node)}", lambda: _strings(scope.node))
        return any(s == flag or s.startswith(flag + " ") or f" {flag} " in f" {s} " for s in given)

    # --- command strings: "ffmpeg -i in.mp4 -c:v h264_nvenc out.mp4", f-strings ---------

    def visit_Constant(self, node: ast.Constant, ctx: FileContext) -> None:
        if not isinstance(node.value, str) or isinstance(ctx.parent, (ast.List, ast.Tuple, ast.JoinedStr, ast.keyword, ast.Expr)):
            return
        self._command_text(node, node.value, ctx)

    def visit_JoinedStr(self, node: ast.JoinedStr, ctx: FileContext) -> None:
        text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        self._command_text(node, text, ctx)

    def _command_text(self, node: ast.expr, text: str, ctx: FileContext) -> None:
        if "ffmpeg" not in text or self._masked(node, ctx):
            return
        codec = _NVENC_IN_TEXT.search(text)
        if codec and "-gpu" not in text:
            what, flag, after = f"NVENC encoder `{codec.group()}` without `-gpu`", "-gpu", codec.group()
        elif _HWACCEL_IN_TEXT.search(text) and "-hwaccel_device" not in text:
            after = _HWACCEL_IN_TEXT.search(text).group()
            what, flag = f"`{' '.join(after.split())}` without `-hwaccel_device`", "-hwaccel_device"
        else:
            return
        index = runtimes.gpu_index(ctx, node)
        value = f"{{{index.expr}}}" if index is not None else "N"
        step = f"add `{flag} {value}` after `{after}` in the command" + ("" if index is not None else f": {entry_points.manual_step(ctx, f'`{flag}`')}")
        message = f"ffmpeg's {what} runs on GPU 0 (its first CUDA device), whatever GPU the program was told to use"
        ctx.report(self.code, node, message, ctx.display_only(self.code, step))

    # --- wrappers: ffmpeg-python, imageio, moviepy, PyNvVideoCodec, decord ----------------

    def visit_Call(self, node: ast.Call, ctx: FileContext) -> None:
        entry = entry_points.matching(self.code, node, ctx)
        if entry is None or self._masked(node, ctx):
            return
        if entry.option in ("gpu_id", "dev_id"):
            self._device_index(node, entry, ctx)
            return
        codec = next((kw.value for kw in node.keywords if kw.arg in _CODEC_KEYWORDS), None) or _unpacked_codec(node)
        hwaccel = keyword(node, "hwaccel")
        if codec is not None and _is_str(codec) and _NVENC.fullmatch(codec.value):
            self._wrapper(node, codec, entry, ctx, "-gpu")
        elif entry.option == "gpu" and hwaccel is not None and _is_str(hwaccel.value) and hwaccel.value.value in _HWACCEL_GPU:
            if not _gives(node, "hwaccel_device") and not _opaque(node):
                self._report_keyword(node, hwaccel.value, "hwaccel_device", ctx, f"`hwaccel={ctx.text(hwaccel.value)}` without `hwaccel_device`")

    def _wrapper(self, node: ast.Call, codec: ast.Constant, entry, ctx: FileContext, flag: str) -> None:
        what = f"NVENC encoder `{codec.value}` without a GPU index"
        if entry.option == "gpu":  # ffmpeg-python: keywords become `-k v`
            if not _gives(node, "gpu") and not _opaque(node):
                self._report_keyword(node, codec, "gpu", ctx, what)
            return
        params = keyword(node, entry.option)
        if params is None:
            if passes_unknown_args(node):
                return
            index = runtimes.gpu_index(ctx, node)
            fix = None
            if index is not None:
                text = f'{entry.option}=["{flag}", str({index.expr})]'
                fix = ctx.fix(self.code, f"Pass `{text}` ({index.why})", ctx.add_keyword(node, text), *index.edits)
            self._report(codec, ctx, what, fix, f"pass `{entry.option}=[\"{flag}\", \"N\"]`")
        elif isinstance(params.value, (ast.List, ast.Tuple)):
            listed = [e.value for e in params.value.elts if isinstance(e, ast.Constant)]
            if flag in listed:
                return
            index = runtimes.gpu_index(ctx, node)
            fix = None
            if index is not None and params.value.elts:
                fix = ctx.fix(self.code, f"Add `\"{flag}\"` ({index.why})", ctx.insert_after(params.value.elts[-1], f', "{flag}", str({index.expr})'), *index.edits)
            self._report(codec, ctx, what, fix, f"add `\"{flag}\", \"N\"` to `{entry.option}`")

    def _report_keyword(self, node: ast.Call, at: ast.expr, name: str, ctx: FileContext, what: str) -> None:
        index = runtimes.gpu_index(ctx, node)
        fix = None
        if index is not None:
            fix = ctx.fix(self.code, f"Pass `{name}={index.expr}` ({index.why})", ctx.add_keyword(node, f"{name}={index.expr}"), *index.edits)
        self._report(at, ctx, what, fix, f"pass `{name}=N`")

    def _report(self, at: ast.expr, ctx: FileContext, what: str, fix, without: str) -> None:
        message = f"ffmpeg's {what} runs on GPU 0 (its first CUDA device), whatever GPU the program was told to use"
        if fix is None:
            fix = ctx.display_only(self.code, f"{without}: {entry_points.manual_step(ctx, 'the GPU index')}")
        ctx.report(self.code, at, message, fix)

    def _device_index(self, node: ast.Call, entry, ctx: FileContext) -> None:
        """PyNvVideoCodec's `gpu_id`, decord's `gpu(dev_id)`: omitted or 0 is GPU 0."""
        given = argument(node, entry.option, entry.position)
        if given is None and passes_unknown_args(node):
            return
        if given is not None and not (isinstance(given, ast.Constant) and given.value == 0):
            return
        at = given if given is not None else node
        callee = ctx.text(node.func)
        what = f"`{callee}({ctx.text_args(node)})` decodes on GPU 0 ({entry.cite})"
        index = runtimes.gpu_index(ctx, node)
        if index is None:
            fix = ctx.display_only(self.code, f"pass `{entry.option}=`: {entry_points.manual_step(ctx, f'`{entry.option}=`')}")
        elif given is None:
            text = f"{entry.option}={index.expr}" if entry.position is None else index.expr
            fix = ctx.fix(self.code, f"Pass {index.why}", ctx.add_keyword(node, text), *index.edits)
        else:
            fix = ctx.fix(self.code, f"Pass {index.why}", ctx.replace(given, index.expr), *index.edits)
        ctx.report(self.code, at, f"{what}, whatever GPU the program was told to use", fix)

    def _masked(self, node: ast.AST, ctx: FileContext) -> bool:
        return runtimes.devices_masked(ctx) or ctx.visible_devices_set_before(node)


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _unpacked_codec(node: ast.Call) -> ast.expr | None:
    """`output(f, **{"c:v": "h264_nvenc"})`: ffmpeg-python's way to pass `-c:v`."""
    for kw in node.keywords:
        if kw.arg is None and isinstance(kw.value, ast.Dict):
            for key, value in zip(kw.value.keys, kw.value.values):
                if _is_str(key) and key.value in _CODEC_KEYWORDS:
                    return value
    return None


def _gives(node: ast.Call, name: str) -> bool:
    """Is `name` passed, as a keyword or a key of a literal `**{...}`?"""
    if keyword(node, name) is not None:
        return True
    return any(
        kw.arg is None and isinstance(kw.value, ast.Dict) and any(_is_str(k) and k.value == name for k in kw.value.keys)
        for kw in node.keywords
    )


def _opaque(node: ast.Call) -> bool:
    """`*args`, or `**options` that is not a literal dict: anything may be passed."""
    return any(isinstance(a, ast.Starred) for a in node.args) or any(
        kw.arg is None and not isinstance(kw.value, ast.Dict) for kw in node.keywords
    )


def _strings(root: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(root) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


CHECK = FfmpegGpuWithoutIndex()
