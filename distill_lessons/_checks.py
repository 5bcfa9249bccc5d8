"""Argument checks shared by the library, so every error reads the same way.

Each helper raises ``ValueError`` (or ``TypeError`` for a wrong kind of
object) with a message that names the argument and what was expected.
"""

from __future__ import annotations

import operator

import torch


def positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 1, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def non_negative_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 0, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return value


def probability(name: str, value: object) -> float:
    """Return ``value`` as a float if it lies in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    value = float(value)
    if not value > 0.0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def generator(seed: int | torch.Generator | None) -> torch.Generator:
    """A ``torch.Generator`` from a seed, or the generator itself.

    ``None`` is refused: every random function in this library takes an
    explicit seed so that the book's numbers repeat.
    """
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(
            f"seed must be an int or a torch.Generator, got {seed!r}"
        )
    if not -(2**63) <= seed < 2**64:
        raise ValueError(
            f"seed must lie in [-2**63, 2**64 - 1] (a 64-bit integer), "
            f"got {seed!r}"
        )
    g = torch.Generator()
    g.manual_seed(seed)
    return g


_INTEGER_DTYPES = (
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
)


def long_tensor(name: str, value: object, *, dims: int | None = None):
    """Check that ``value`` is an integer tensor, optionally of ``dims``-d."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of integer ids, "
            f"got {type(value).__name__}"
        )
    if value.dtype not in _INTEGER_DTYPES:
        raise ValueError(
            f"{name} must hold integer ids (dtype long), got {value.dtype}"
        )
    if dims is not None and value.dim() != dims:
        raise ValueError(
            f"{name} must have {dims} dimension(s), "
            f"got shape {tuple(value.shape)}"
        )
    return value.long()


def id_tensor(name: str, value: object, *, dims: int | None = None):
    """Like :func:`long_tensor`, but also take a list of Python ints.

    Floats, bools and strings in the list are refused rather than rounded
    or parsed, so ``[1.9]`` never silently becomes id 1.
    """
    if not isinstance(value, torch.Tensor):
        if isinstance(value, (str, bytes)):
            raise ValueError(
                f"{name} must be a tensor or a list of integer ids, "
                f"got {type(value).__name__} {value!r:.40}"
            )
        try:
            items = list(value)
        except TypeError:
            raise ValueError(
                f"{name} must be a tensor or a list of integer ids, "
                f"got {type(value).__name__}"
            ) from None
        ids = []
        for item in items:
            try:
                if isinstance(item, bool):
                    raise TypeError
                ids.append(operator.index(item))
            except TypeError:
                raise ValueError(
                    f"{name} must hold integer ids, got {item!r}"
                ) from None
        try:
            value = torch.tensor(ids, dtype=torch.long)
        except (OverflowError, RuntimeError, ValueError):
            raise ValueError(
                f"{name} must hold ids that fit in 64 bits, "
                f"got {max(ids, key=abs)}"
            ) from None
    return long_tensor(name, value, dims=dims)
