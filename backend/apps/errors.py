"""Errors of the API applications: refused signatures, and mistakes in managing apps.

AppError (DingpassError)
 +-- NoSuchApp (LookupError)           no app of that name or key (the CLI)
 +-- AppNameRefused (ValueError)       the name is taken, or cannot be a name (the CLI)
 +-- ScopesRefused (ValueError)        a scope is unknown, or none was given (the CLI)
AppAuthError (ApiError)                a request's application signature was refused; ``headers``
 |                                     go out with the answer
 +-- AppUnauthorized (Unauthorized) 401
 |    +-- Unsigned                     a signature header is missing, or a header left unsigned
 |    +-- UnknownApp                   no app has that X-Ca-Key
 |    +-- TimestampExpired             X-Ca-Timestamp is outside the window
 |    +-- SignatureMismatch            X-Ca-Error-Message carries our string to sign
 |    +-- NonceReplayed                X-Ca-Nonce was used before
 +-- AppForbidden                 403
 |    +-- AppDisabled                  the app was disabled
 |    +-- NotAllowed                   the app lacks the route's scope (`dingpass apps allow`)
 +-- AppBadRequest (BadRequest)   400
      +-- BadTimestamp                 X-Ca-Timestamp is not milliseconds
      +-- BadSignatureMethod           X-Ca-Signature-Method is neither HmacSHA256 nor HmacSHA1
      +-- ContentMd5Missing            a body that is not a form came without Content-MD5
      +-- ContentMd5Mismatch           Content-MD5 is not the body's
"""

from backend.exceptions import ApiError, BadRequest, DingpassError, Unauthorized

ERROR_MESSAGE = "X-Ca-Error-Message"
"""The header API Gateway answers a wrong signature with; its text is ours for the same request."""
MAX_ERROR_MESSAGE = 4096
"""Characters of X-Ca-Error-Message: proxies refuse larger headers, and the start is what helps."""


class AppError(DingpassError):
    """An API application cannot be created, found or changed as asked."""


class NoSuchApp(AppError, LookupError):
    """No application has that name or key."""

    def __init__(self, name_or_key: str) -> None:
        super().__init__(
            f"no API application is named or keyed {name_or_key!r} (see `dingpass apps list`)"
        )


class AppNameRefused(AppError, ValueError):
    """The name is taken by another application, or is not a usable name."""


class ScopesRefused(AppError, ValueError):
    """A scope named is not one an application can have, or no scope was named."""


class AppAuthError(ApiError):
    """A request's application signature was refused.

    ``headers`` are sent with the answer (the error handler adds them); empty for most.
    """

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(zh, en)
        self.headers: dict[str, str] = {}


class AppUnauthorized(AppAuthError, Unauthorized):
    """The request does not prove which application sent it, or proves it too late."""


class AppForbidden(AppAuthError):
    """The application is known and proved itself, but may not call."""

    status, code = 403, "forbidden"


class AppBadRequest(AppAuthError, BadRequest):
    """A signature header or the body is malformed."""


class Unsigned(AppUnauthorized):
    """A signature header is missing, or a header the replay checks rely on was left unsigned."""

    code = "unsigned"


class UnknownApp(AppUnauthorized):
    """No application has the X-Ca-Key given."""

    code = "unknown_app"

    def __init__(self, app_key: str) -> None:
        shown = app_key[:40]
        super().__init__(
            f"X-Ca-Key {shown!r} 不是已登记的应用；请使用分配给您的 AppKey。",
            f"X-Ca-Key {shown!r} is no registered application; send the AppKey you were given.",
        )


class TimestampExpired(AppUnauthorized):
    """X-Ca-Timestamp is further from our clock than the window allows."""

    code = "timestamp_expired"

    def __init__(self, given: int, server_ms: int, minutes: int) -> None:
        super().__init__(
            f"X-Ca-Timestamp {given} 与服务器时间 {server_ms} 相差超过 {minutes} 分钟；"
            "请校准时钟，并以毫秒为单位发送当前时间。",
            f"X-Ca-Timestamp {given} is more than {minutes} minutes from the server's time "
            f"{server_ms}; set your clock right and send the current time in milliseconds.",
        )


class SignatureMismatch(AppUnauthorized):
    """X-Ca-Signature is not the signature of the request; X-Ca-Error-Message shows our text."""

    code = "signature_mismatch"

    def __init__(self, string_to_sign: str) -> None:
        super().__init__(
            "X-Ca-Signature 与请求不符；请将响应头 X-Ca-Error-Message 中服务端的待签名字符串"
            "（换行显示为 #）与您的比较，一致时请检查 AppSecret。",
            "X-Ca-Signature does not match the request; compare the server's string to sign in "
            "the X-Ca-Error-Message response header (each line break shown as #) with yours; if "
            "they are the same, check the AppSecret.",
        )
        self.headers = {ERROR_MESSAGE: error_message(string_to_sign)}


class NonceReplayed(AppUnauthorized):
    """X-Ca-Nonce was seen with a request of this application before."""

    code = "nonce_replayed"

    def __init__(self) -> None:
        super().__init__(
            "X-Ca-Nonce 已被使用；每个请求（包括重试）都须使用新的随机值（如 UUID）并重新签名。",
            "X-Ca-Nonce was used before; give every request, retries included, a new random "
            "value (a UUID) and sign it again.",
        )


class AppDisabled(AppForbidden):
    """The application was disabled by the operator."""

    code = "app_disabled"

    def __init__(self, app_key: str) -> None:
        super().__init__(
            f"应用 {app_key} 已被停用；请联系管理员启用。",
            f"The application {app_key} is disabled; ask the operator to enable it.",
        )


class NotAllowed(AppForbidden):
    """The application proved itself but is not allowed the scope the route needs."""

    code = "not_allowed"

    def __init__(self, name: str, scope: str, granted: str) -> None:
        """``granted``: the scopes the app would have with ``scope``, as `apps allow` takes them."""
        command = f"dingpass apps allow {name} {granted}"
        super().__init__(
            f"应用 {name} 没有权限 {scope}；请联系管理员运行 `{command}` 授权。",
            f"The application {name} is not allowed {scope}; the operator grants it with "
            f"`{command}`.",
        )
        self.scope = scope


class BadTimestamp(AppBadRequest):
    """X-Ca-Timestamp is not a whole number of milliseconds."""

    code = "bad_timestamp"

    def __init__(self, given: str) -> None:
        shown = given[:40]
        super().__init__(
            f"X-Ca-Timestamp {shown!r} 不是数字；请发送自 1970 年起的毫秒数。",
            f"X-Ca-Timestamp {shown!r} is not a number; send milliseconds since 1970.",
        )


class BadSignatureMethod(AppBadRequest):
    """X-Ca-Signature-Method names an algorithm we do not take."""

    code = "bad_signature_method"

    def __init__(self, given: str) -> None:
        shown = given[:40]
        super().__init__(
            f"X-Ca-Signature-Method {shown!r} 不受支持；请使用 HmacSHA256（默认）或 HmacSHA1。",
            f"X-Ca-Signature-Method {shown!r} is not supported; use HmacSHA256 (the default) "
            "or HmacSHA1.",
        )


class ContentMd5Missing(AppBadRequest):
    """A body that is not a form came without the Content-MD5 that would sign it."""

    code = "content_md5_missing"

    def __init__(self, actual: str) -> None:
        super().__init__(
            f"请求体须带 Content-MD5 头（Base64(MD5)，此请求体应为 {actual}），并将其计入签名。",
            f"A request body needs a Content-MD5 header (Base64 of its MD5: {actual} for this "
            "one), signed with the request, so that the signature covers the body.",
        )


class ContentMd5Mismatch(AppBadRequest):
    """Content-MD5 is not the Base64 MD5 of the body received."""

    code = "content_md5_mismatch"

    def __init__(self, given: str, actual: str) -> None:
        shown = given[:40]
        super().__init__(
            f"Content-MD5 {shown!r} 与收到的请求体不符（应为 {actual}）；请对发送的原始字节计算 "
            "Base64(MD5)。",
            f"Content-MD5 {shown!r} is not that of the body received ({actual}); compute "
            "Base64(MD5) over the exact bytes you send.",
        )


def error_message(string_to_sign: str) -> str:
    """X-Ca-Error-Message for a wrong signature, worded as API Gateway words it.

    A header holds one line of Latin-1: line breaks become ``#`` (as API Gateway shows them),
    other characters outside printable ASCII (a decoded ``%0D``, Chinese in a query value)
    are shown as their UTF-8 %-escapes, so the header can always be sent.
    """
    shown = "".join(_printable(c) for c in string_to_sign.replace("\n", "#"))
    if len(shown) > MAX_ERROR_MESSAGE:
        shown = shown[:MAX_ERROR_MESSAGE] + "..."
    return f"Invalid Signature, Server StringToSign:`{shown}`"


def _printable(char: str) -> str:
    if " " <= char <= "~":
        return char
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "replace"))
