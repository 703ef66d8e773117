"""Activation-code strings: random, typeable, and checked before any lookup.

A code is 19 random Crockford base32 symbols (95 bits from ``secrets``) and one check
symbol, shown in groups of five: ``7KQ2M-9XHZP-3RWTB-A8D48``. The check is Damm's
scheme over GF(32) -- each step is ``state = 2*state + symbol`` -- which catches every
single mistyped symbol and every swap of two neighbours. Reading forgives case,
spaces, dashes, and the letters Crockford maps to digits (I and L to 1, O to 0).
"""

import secrets

from license.exceptions import ActivationCodeError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
RANDOM_SYMBOLS = 19
GROUP = 5
LENGTH = RANDOM_SYMBOLS + 1
_VALUE = {symbol: index for index, symbol in enumerate(ALPHABET)}
_VALUE.update({"I": 1, "L": 1, "O": 0})
_MODULUS = 0b100101  # x^5 + x^2 + 1, irreducible: the symbols form the field GF(32)


def generate() -> str:
    """A new activation code, formatted for display."""
    # 95 random bits in one call (96 drawn, one dropped), cut into 19 symbols of five bits:
    # a batch of 100,000 codes would spend most of its time in 1.9 million randbelow calls.
    bits = int.from_bytes(secrets.token_bytes(12), "big") >> 1
    data = [(bits >> (5 * i)) & 31 for i in range(RANDOM_SYMBOLS)]
    return _format(data + [_check_symbol(data)])


def parse(text: str) -> str:
    """The canonical form of a typed code, or ActivationCodeError saying what is wrong."""
    compact = "".join(text.split()).replace("-", "").upper()
    unknown = sorted({c for c in compact if c not in _VALUE})
    if unknown:
        raise ActivationCodeError(
            "an activation code has only digits and letters other than U; "
            f"found {''.join(unknown)!r}"
        )
    if len(compact) != LENGTH:
        raise ActivationCodeError(
            f"an activation code has {LENGTH} characters, this one has {len(compact)}: "
            "check that none is missing"
        )
    values = [_VALUE[c] for c in compact]
    if _damm(values) != 0:
        raise ActivationCodeError("this activation code has a typing mistake: check each character")
    return _format(values)


def _format(values: list[int]) -> str:
    text = "".join(ALPHABET[v] for v in values)
    return "-".join(text[i : i + GROUP] for i in range(0, len(text), GROUP))


def _check_symbol(values: list[int]) -> int:
    # The symbol c that brings the state to zero: 2*state + c == 0, and -x == x in GF(32).
    return _times_two(_damm(values))


def _damm(values: list[int]) -> int:
    state = 0
    for value in values:
        state = _times_two(state) ^ value
    return state


def _times_two(value: int) -> int:
    value <<= 1
    return value ^ _MODULUS if value & 0b100000 else value
