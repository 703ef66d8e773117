"""DingTalk callback crypto: the worked examples of ../shared/dingtalk.md §6, byte for byte.

approval/ and sandbox/ implement it separately; both must reproduce every vector and
read each other's messages.
"""

import pytest

from approval.callback_crypto import CallbackCrypto
from approval.exceptions import BadCiphertext, BadSignature, WrongOwner
from sandbox import callback_crypto as dingtalk_side

# §6.1 official debugging tool vector (owner = suite key)
OFFICIAL = dict(
    token="123456",
    aes_key="4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij",
    owner="suite4xxxxxxxxxxxxxxx",
    signature="5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0",
    timestamp="1445827045067",
    nonce="nEXhMP4r",
    encrypt="1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMeiZI7gTRWVdUBmfxjZ8Ej23JVYa9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgUathB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ==",
    plain='{"EventType":"check_create_suite_url","Random":"LPIdSnlF","TestSuiteKey":"suite4xxxxxxxxxxxxxxx"}',
    random16=b"hU3bEfGZZewzhG5a",
)
# §6.2 official reply direction, seconds timestamp
REPLY = dict(
    token="123456",
    aes_key="1234567890123456789012345678901234567890123",
    owner="dingsnotzck6pm5veliw",
    signature="9a95a004dd16f5c307e849b994173f76aa26e5eb",
    timestamp="1614767836",
    nonce="A7Co0cJLMzIDtMMI",
    encrypt="YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOURqhalbmBJQk5FNcRk42Gl5T0YQXZNwpwWSm1xAFJ5ZA==",
    plain="success",
    random16=b"dICkEDLj0eb6yAbc",
)
# §6.3 official repo sample (Python file's __main__)
REPO = dict(
    token="mryue",
    aes_key="Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
    owner="ding6ccabc44d2c8d38b",
    signature="03044561471240d4a14bb09372dfcfd4fd0e40cb",
    timestamp="1608001896814",
    nonce="WL4PK6yA",
    encrypt="0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyDCYxxOK+HZeKju4yhELOFchzNukR+t8SB/qk4ROMu3",
    plain='{"EventType":"check_url"}',
    random16=b"l7Y3EcX2CU5w8av3",
)
# §6.4 (a) dingpass-shaped push with a Chinese title (325 bytes, 313 characters)
PUSH = dict(
    token="dingpass2026tok",
    aes_key="dP7s3kQ9vX2mL8nR4tY6wZ1aB5cD0eF3gH7jK9pQ2rS",
    owner="dingpassappkey000001",
    signature="d6a32b506c6a8d648543c1d22b8101aa47dc96a0",
    timestamp="1779512345678",
    nonce="Ab3dE5gH",
    encrypt="w8LDnYiEnYsLcf3xPkgdbIYTcjpK9oTwM0kZlgbkpTBJDn7EATclpDTNbuz70G0gp9PQrhMLnHPYl+KA5MoU7BkwC1CmLwAyL7hTVCGD7+MnyhVE66qKNTYunLYowu0qM29EjLYf119wBKKGfCxcDkCKze0KnQVXmJysUrfuOEbjmednxFWwsTfL/q2afyZZrLix4CpDay6LQ+H8+52hNjuUIhjT4RmzzWHuAgh4tT7V2CO5y6VMkfGZ8X5gmX0jAx0WxQZ6QsU8WioVehgUgPUR5Z8iNFjOIcnguUKSPtKusUwHj2rtWC8zhr0rbUjFmnSl8uQOjLUAzpWIH8NbfX4G3gjin0GHg8bYefGYzDdZIxfRyuuX+AsrN7OJ5EXgXE3UeM8HrEH9IDMa9mPWsv7304xBbBTM2o1wLVjURb8Ch+03fanV8Vah3RrehAKHgcsquShPBvbmjgbk2eEH8Bbq4a1kB11uLLvZ0vBDRIQ4DhgbX4bR3lQHrpjgWgyy",
    plain='{"EventType":"bpms_instance_change","processInstanceId":"pi-0001","corpId":"ding0corp","createTime":1779512300000,"finishTime":1779512345000,"title":"许可申请-测试","type":"finish","result":"agree","staffId":"manager01","url":"https://aflow.dingtalk.com/dingtalk/mobile/homepage.htm","processCode":"PROC-DINGPASS-0001"}',
    random16=b"Qm8ZtR2vLx5NcP1w",
)
# §6.4 (b) our reply to it, and (c) check_url
PUSH_REPLY = dict(
    PUSH,
    signature="52818a54770fc4818f70118f6ff13d4aa9b8ae06",
    timestamp="1779512346000",
    nonce="Zy9xW8vU",
    plain="success",
    random16=b"Kp4Lm7Nq2Rs5Tu8V",
    encrypt="mPjUDMEZASfBL+Z+1CeoOb4x7xSc5NEHC+CPU2rGbqigJqN0X/MyWe3oAWsVU+O318Yoa8bbZkQsEPYYz4mIWA==",
)
CHECK_URL = dict(
    PUSH,
    signature="ce95380b3d558c8ebfb5ea46d38bfb4a6df455cd",
    timestamp="1779512000123",
    nonce="cHkUrl01",
    plain='{"EventType":"check_url"}',
    random16=b"Cu7Vw1Xy3Za5Bc9D",
    encrypt="VqWUDiaNNy5tFouJ1l7gKVnA924MtaqGvw3ZyImlak0Is16oPL82sR8p83Z9lBtt3+9IFM4KE8KdjwrtSObY02YKso2iE++wxpEX3c0ZpJ6dS7W0nhjBUP1d7398q/Ez",
)
VECTORS = [OFFICIAL, REPLY, REPO, PUSH, PUSH_REPLY, CHECK_URL]
IDS = [
    "official-6.1",
    "official-6.2",
    "repo-6.3",
    "push-6.4a",
    "reply-6.4b",
    "check-url-6.4c",
]


def ours(v) -> CallbackCrypto:
    return CallbackCrypto(v["token"], v["aes_key"], v["owner"])


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_decrypts_each_vector_and_checks_its_signature(v):
    crypto = ours(v)
    crypto.check_signature(v["signature"], v["timestamp"], v["nonce"], v["encrypt"])
    assert crypto.decrypt(v["encrypt"]) == v["plain"]


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_encrypts_each_vector_byte_for_byte(v):
    assert ours(v).encrypt(v["plain"], v["random16"]) == v["encrypt"]


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_the_sandbox_reproduces_each_vector_independently(v):
    assert dingtalk_side.seal(v["aes_key"], v["owner"], v["plain"], v["random16"]) == v["encrypt"]
    assert (
        dingtalk_side.msg_signature(v["token"], v["timestamp"], v["nonce"], v["encrypt"])
        == v["signature"]
    )
    assert dingtalk_side.unseal(v["aes_key"], v["owner"], v["encrypt"]) == v["plain"]


def test_each_side_reads_the_other():
    crypto = ours(PUSH)
    assert (
        crypto.decrypt(dingtalk_side.seal(PUSH["aes_key"], PUSH["owner"], "审批通过 ✓"))
        == "审批通过 ✓"
    )
    assert (
        dingtalk_side.unseal(PUSH["aes_key"], PUSH["owner"], crypto.encrypt("success")) == "success"
    )


def test_a_flipped_character_fails_the_signature():
    tampered = (
        PUSH["encrypt"][:10] + ("A" if PUSH["encrypt"][10] != "A" else "B") + PUSH["encrypt"][11:]
    )
    with pytest.raises(BadSignature):
        ours(PUSH).check_signature(PUSH["signature"], PUSH["timestamp"], PUSH["nonce"], tampered)


def test_an_unsorted_signature_is_refused():
    unsorted = dingtalk_side.hashlib.sha1(
        (PUSH["token"] + PUSH["timestamp"] + PUSH["nonce"] + PUSH["encrypt"]).encode()
    ).hexdigest()
    with pytest.raises(BadSignature):
        ours(PUSH).check_signature(unsorted, PUSH["timestamp"], PUSH["nonce"], PUSH["encrypt"])


def test_another_owner_key_is_refused():
    with pytest.raises(WrongOwner):
        CallbackCrypto(PUSH["token"], PUSH["aes_key"], "ding0corp").decrypt(PUSH["encrypt"])


@pytest.mark.parametrize("encrypted", ["not base64!", "", "QUJD", PUSH["encrypt"][:-24] + "=" * 0])
def test_a_damaged_ciphertext_is_refused(encrypted):
    with pytest.raises(BadCiphertext):
        ours(PUSH).decrypt(encrypted)


def test_a_tampered_block_is_refused_not_crashed():
    import base64

    raw = bytearray(base64.b64decode(PUSH["encrypt"]))
    raw[-20] ^= 0xFF  # corrupts the last block: padding and owner no longer line up
    with pytest.raises((BadCiphertext, WrongOwner)):
        ours(PUSH).decrypt(base64.b64encode(bytes(raw)).decode())
