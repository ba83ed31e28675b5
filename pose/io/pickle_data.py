"""Read plain data out of a pickle stream without executing it.

pandas' HDF "table" format keeps the column names of a DataFrame in PyTables node
attributes that are Python pickles (``non_index_axes``, ``values_block_0_kind``,
``info``...). ``pickle.loads`` on such an attribute runs whatever the file's author put
there (a ``__reduce__`` calling ``os.system``), so ethopose never unpickles a pose file.

:func:`parse_pickle_data` walks the opcodes with :func:`pickletools.genops` (a parser
that only decodes bytes) and rebuilds the value from data opcodes alone: strings, bytes,
numbers, booleans, None, lists, tuples, dicts, sets and the memo. Any opcode that would
import a name or call something (``GLOBAL``, ``STACK_GLOBAL``, ``REDUCE``, ``BUILD``,
``INST``, ``OBJ``, ``NEWOBJ``, ``EXT*``, ``PERSID``...) makes it refuse the stream with
:class:`UnsafePickleError`; nothing is imported and nothing is called.
"""

from __future__ import annotations

import pickletools
from typing import Any

# Opcodes that push a constant decoded by genops (its `arg`).
_CONSTANTS = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
    "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT",
}
_MAX_ITEMS = 1_000_000  # a pose file's column list has hundreds of entries at most

_MARK = object()


class UnsafePickleError(ValueError):
    """The pickle stream holds something other than plain data, or is malformed."""


class PickleCodeError(UnsafePickleError):
    """The pickle stream would import a name or call something (it was not run)."""


def parse_pickle_data(raw: bytes) -> Any:
    """Rebuild the plain-data value of a pickle stream without executing anything.

    Parameters
    ----------
    raw
        The pickle bytes (any protocol).

    Returns
    -------
    object
        str, bytes, int, float, bool, None, or lists / tuples / dicts / sets of these.

    Raises
    ------
    PickleCodeError
        For any opcode that imports or calls (the opcode is named).
    UnsafePickleError
        For a malformed stream.
    """
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    n_items = 0
    try:
        for op, arg, pos in pickletools.genops(raw):
            name = op.name
            n_items += 1
            if n_items > _MAX_ITEMS:
                raise UnsafePickleError("pickle stream too long for plain metadata")
            if name in _CONSTANTS:  # protocol 0 writes True as INT "01": genops gives a bool
                stack.append(arg)
            elif name == "NONE":
                stack.append(None)
            elif name in ("NEWTRUE", "NEWFALSE"):
                stack.append(name == "NEWTRUE")
            elif name in ("PROTO", "FRAME"):
                continue
            elif name == "STOP":
                if len(stack) != 1:
                    raise UnsafePickleError("malformed pickle: stack not one value at STOP")
                return stack[0]
            elif name == "MARK":
                stack.append(_MARK)
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name == "EMPTY_SET":
                stack.append(set())
            elif name in ("LIST", "TUPLE", "DICT", "FROZENSET"):
                items = _pop_mark(stack)
                if name == "LIST":
                    stack.append(items)
                elif name == "TUPLE":
                    stack.append(tuple(items))
                elif name == "FROZENSET":
                    stack.append(frozenset(_hashable(items)))
                else:
                    stack.append(_pairs(items, {}))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                k = int(name[-1])
                if len(stack) < k or any(v is _MARK for v in stack[-k:]):
                    raise UnsafePickleError(f"malformed pickle at byte {pos}: {name}")
                items = stack[-k:]
                del stack[-k:]
                stack.append(tuple(items))
            elif name == "APPEND":
                value = _pop(stack, pos)
                _top(stack, list, pos).append(value)
            elif name == "APPENDS":
                items = _pop_mark(stack)
                _top(stack, list, pos).extend(items)
            elif name == "SETITEM":
                value = _pop(stack, pos)
                key = _pop(stack, pos)
                _pairs([key, value], _top(stack, dict, pos))
            elif name == "SETITEMS":
                items = _pop_mark(stack)
                _pairs(items, _top(stack, dict, pos))
            elif name == "ADDITEMS":
                items = _pop_mark(stack)
                _top(stack, set, pos).update(_hashable(items))
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = _peek(stack, pos)
            elif name == "MEMOIZE":
                memo[len(memo)] = _peek(stack, pos)
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if int(arg) not in memo:
                    raise UnsafePickleError(f"malformed pickle at byte {pos}: memo {arg} unset")
                stack.append(memo[int(arg)])
            elif name == "POP":
                _pop(stack, pos)
            elif name == "POP_MARK":
                _pop_mark(stack)
            elif name == "DUP":
                stack.append(_peek(stack, pos))
            else:
                raise PickleCodeError(
                    f"pickle opcode {name} at byte {pos} would import or call code; refused"
                )
    except UnsafePickleError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, RecursionError, OverflowError, MemoryError) as exc:
        raise UnsafePickleError(f"malformed pickle: {exc}") from None
    raise UnsafePickleError("malformed pickle: no STOP opcode")


def _pop(stack: list[Any], pos: int) -> Any:
    if not stack or stack[-1] is _MARK:
        raise UnsafePickleError(f"malformed pickle at byte {pos}: stack underflow")
    return stack.pop()


def _peek(stack: list[Any], pos: int) -> Any:
    if not stack or stack[-1] is _MARK:
        raise UnsafePickleError(f"malformed pickle at byte {pos}: empty stack")
    return stack[-1]


def _top(stack: list[Any], kind: type, pos: int) -> Any:
    if not stack or not isinstance(stack[-1], kind):
        raise UnsafePickleError(f"malformed pickle at byte {pos}: expected a {kind.__name__}")
    return stack[-1]


def _pop_mark(stack: list[Any]) -> list[Any]:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1 :]
            del stack[i:]
            return items
    raise UnsafePickleError("malformed pickle: no MARK")


def _hashable(items: list[Any]) -> list[Any]:
    for v in items:
        if isinstance(v, (list, dict, set)):
            raise UnsafePickleError("malformed pickle: unhashable set item")
    return items


def _pairs(items: list[Any], out: dict[Any, Any]) -> dict[Any, Any]:
    if len(items) % 2:
        raise UnsafePickleError("malformed pickle: odd number of dict items")
    for key, value in zip(items[::2], items[1::2], strict=True):
        if isinstance(key, (list, dict, set)):
            raise UnsafePickleError("malformed pickle: unhashable dict key")
        out[key] = value
    return out
