"""Sign license terms into the text a customer pastes into the product."""

import binascii
import functools
import secrets
from collections.abc import Callable
from datetime import datetime
from operator import itemgetter

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from license.codes import ALPHABET
from license.exceptions import PayloadError
from license.render import render
from license.verifier import BEGIN, END, FORMAT_VERSION, SIGNING_PREFIX, License, key_id

LINE_WIDTH = 64
MAX_QUANTITY = 2**53 - 1  # beyond it JSON numbers lose precision
TITLE = (
    "DingPass license. Paste this whole text into the product; "
    "the lines above BEGIN are for reading only.\n"
)


class Issuer:
    """Signs licenses with one private key, whose id it stamps into each license."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.key_id = key_id(private_key.public_key())
        self._head = f"\n{BEGIN}\nFormat: {FORMAT_VERSION}\nKey-Id: {self.key_id}\n\n"

    def sign(self, terms: License) -> str:
        """The license text for ``terms``, signed and stamped with this issuer's key id."""
        check_terms(terms)
        payload, summary = render(terms, self.key_id)
        signed = payload + self._key.sign(SIGNING_PREFIX + payload)
        # base64url without padding; two replaces cost half of one translate.
        body = (
            binascii.b2a_base64(signed, newline=False)
            .replace(b"+", b"-")
            .replace(b"/", b"_")
            .rstrip(b"=")
            .decode("ascii")
        )
        lines = "\n".join(_cut_into_lines(-(-len(body) // LINE_WIDTH))(body))
        return f"{TITLE}{summary}{self._head}{lines}\n{END}\n"


@functools.cache
def _cut_into_lines(count: int) -> Callable[[str], tuple[str, ...]]:
    """Cuts a text of ``count`` lines into its lines, in one call to C."""
    # count >= 2: the signature alone is 86 base64 characters.
    return itemgetter(*(slice(n * LINE_WIDTH, (n + 1) * LINE_WIDTH) for n in range(count)))


def new_license_id(now: datetime) -> str:
    """A fresh license id: the UTC issue date and 40 random bits, e.g. L20261123-7KQ2M9XH."""
    tail = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"L{now:%Y%m%d}-{tail}"


def check_terms(terms: License) -> None:
    """Refuse terms no product should be asked to accept."""
    if not (terms.id and terms.product and terms.edition and terms.feature_code):
        raise PayloadError("the license needs an id, a product, an edition and a feature code")
    if not terms.licensee.company.strip() or "@" not in terms.licensee.email:
        raise PayloadError("the licensee needs a company name and an email address")
    if type(terms.quantity) is not int or not 1 <= terms.quantity <= MAX_QUANTITY:
        raise PayloadError(
            f"the quantity must be a whole number from 1 to {MAX_QUANTITY}, got {terms.quantity!r}"
        )
    if terms.valid_until is not None and terms.valid_until <= terms.valid_from:
        raise PayloadError("the license must end after it starts (valid until > valid from)")
    if terms.issued_at.tzinfo is None or terms.valid_from.tzinfo is None:
        raise PayloadError("license times must be timezone-aware")
