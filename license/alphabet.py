"""Crockford's base32 symbols: activation codes, license ids and application numbers use them.

A module that imports nothing, so that code needing only the symbols (the backend numbering
applications) does not pull in the codes' or the signatures' machinery with them.
"""

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
