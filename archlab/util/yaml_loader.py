"""Reading a YAML file a user hands us, bounded before anything uses it.

PyYAML's SafeLoader never runs code, but it builds whatever the text describes: ten lines of
nested aliases ("billion laughs") describe 10^9 values, which the loader shares but which the
first ``repr``, copy or loop over them expands (1.5-3 GiB, then the OOM killer); a 1000-deep
``[[[[...]]]]`` overflows the composer's recursion; a 5000-digit integer or a 13th month is a
ValueError from the constructor. So the file is checked while it is composed, before one
Python value is built:

- at most ``MAX_BYTES`` of UTF-8 text;
- at most ``MAX_DEPTH`` nested collections;
- at most ``MAX_ITEMS`` items in one list or mapping;
- at most ``MAX_VALUES`` values in the whole document *counted with every alias expanded*
  (each node knows the size of its expansion, so counting costs one addition per node);
- no alias that refers to the collection it is in (a cycle), no key given twice;
- scalars of at most ``MAX_SCALAR`` characters and integers within 64 bits.

Each refusal is one UserError naming the file and the key (``depths[2]``, ``train.lr``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import UserError, shorten

MAX_BYTES = 1 << 20  # the shipped space and experiment files are under 3 KiB
MAX_DEPTH = 32
MAX_ITEMS = 1_000
MAX_VALUES = 100_000
MAX_SCALAR = 4_096
MAX_INT = 2**63


class _Refused(Exception):
    """Raised inside the loader; ``read`` turns it into a UserError with the file's name."""

    def __init__(self, at: str, problem: str):
        super().__init__(problem)
        self.at, self.problem = at, problem


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts while it composes (see the module docstring)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._path: list[str] = []  # the keys (and [i] positions) down to the node being composed
        self._size: dict[int, int] = {}  # node id -> values in its full expansion (set when complete)
        self._at: dict[int, str] = {}  # node id -> where it is ("key 'train.lr'")

    def _key(self) -> str:
        """Where the composer is: "key 'train.genomes.a'", "key 'depths[2]'" or "the file"."""
        key = "".join(self._path).lstrip(".")
        if len(key) > 80:
            key = key[:80] + "..."
        return f"key {key!r}" if key else "the file"

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if isinstance(index, ScalarNode):
            label = "." + shorten(index.value, 40, plain=True)
        elif isinstance(index, int):
            label = f"[{index}]"
        elif isinstance(parent, SequenceNode):
            label = f"[{len(parent.value)}]"
        else:
            label = ""  # a mapping key, or the document itself
        self._path.append(label)
        try:
            if parent is not None and len(parent.value) >= MAX_ITEMS:
                raise _Refused(self._key(), f"more than {MAX_ITEMS:,} items in one list or mapping")
            if len(self._path) > MAX_DEPTH:
                raise _Refused(self._key(), f"nested more than {MAX_DEPTH} levels deep")
            if self.check_event(yaml.AliasEvent):
                anchor = self.peek_event().anchor
                target = self.anchors.get(anchor)
                if target is not None and id(target) not in self._size:  # still being composed
                    raise _Refused(
                        self._key(), f"alias *{shorten(anchor, 40, plain=True)} refers to a collection that contains it"
                    )
            node = super().compose_node(parent, index)
            size = self._size.get(id(node))
            if size is None:  # composed now (an alias returns a node that already has its size)
                if isinstance(node, SequenceNode):
                    size = 1 + sum(self._size[id(n)] for n in node.value)
                elif isinstance(node, MappingNode):
                    size = 1 + sum(self._size[id(k)] + self._size[id(v)] for k, v in node.value)
                    self._no_repeated_keys(node)
                else:
                    size = 1
                    if len(node.value) > MAX_SCALAR:
                        raise _Refused(
                            self._key(), f"a value of {len(node.value):,} characters (at most {MAX_SCALAR:,})"
                        )
                self._size[id(node)] = size
                self._at[id(node)] = self._key()  # for an error found while constructing it
            if size > MAX_VALUES:
                raise _Refused(
                    self._key(),
                    f"expands to more than {MAX_VALUES:,} values (aliases of aliases: a 'billion laughs' file?)",
                )
            return node
        finally:
            self._path.pop()

    def _no_repeated_keys(self, node: MappingNode) -> None:
        """PyYAML keeps the last of two equal keys without a word: ``lr: 0.1`` then ``lr: 1``
        trains with 1. A repeated key is refused instead (``<<`` merge keys aside)."""
        seen: set[str] = set()
        for k, _ in node.value:
            if isinstance(k, ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                if k.value in seen:
                    self._path.append("." + shorten(k.value, 40, plain=True))
                    at = self._key()
                    self._path.pop()
                    raise _Refused(at, "given twice (the second would silently win)")
                seen.add(k.value)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = str(node.value).replace("_", "")
        if len(text) > 40:
            raise _Refused(self._key_of(node), f"the integer {shorten(node.value, 20)} is too large")
        value = super().construct_yaml_int(node)
        if not -MAX_INT <= value < MAX_INT:
            raise _Refused(self._key_of(node), f"the integer {shorten(value, 20)} is outside +-2^63")
        return value

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as e:  # a 13th month, a float PyYAML cannot read...
            raise _Refused(
                self._key_of(node),
                f"cannot read {shorten(getattr(node, 'value', ''), 40)}: {shorten(str(e), 80, plain=True)}",
            ) from None

    def _key_of(self, node: Node) -> str:
        """Where ``node`` is: its key as composed, and its line."""
        line = f"line {node.start_mark.line + 1}"
        return f"{self._at[id(node)]} ({line})" if id(node) in self._at else line


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)


def load(text: str, where: str) -> Any:
    """The YAML value of ``text`` (from the file ``where``), or one UserError line."""
    try:
        return yaml.load(text, Loader=BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except _Refused as e:
        raise UserError(f"{where}: {e.at}: {e.problem}") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f" (line {mark.line + 1})" if mark is not None else ""
        problem = e.problem or e.context or "invalid"
        raise UserError(f"{where}: not valid YAML{at}: {shorten(problem, 120, plain=True)}") from None
    except yaml.YAMLError as e:  # ReaderError: a control character; its text has several lines
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{where}: not valid YAML: {shorten(first, 120, plain=True)}") from None


def read_text(path: Path) -> str:
    """The file's text: at most MAX_BYTES, UTF-8."""
    where = path.name
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise UserError(f"{where}: cannot read: {e.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise UserError(f"{where}: larger than {MAX_BYTES // 1024} KiB: not a space or experiment file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(f"{where}: line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save it as UTF-8") from None
