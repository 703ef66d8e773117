"""Named defaults, with their units, in one place."""

ENVIRONMENT = "development"
ENVIRONMENTS = ("development", "production")
VAR_DIR = "var"
"""Local state (SQLite database, development keys) lives here, relative to the working directory."""
DOTENV_FILE = ".env"
DEV_SIGNING_KEY_FILE = "dev-license-key.pem"
"""Created in VAR_DIR on first use when no signing key is configured, in development only."""
SQLITE_FILE = "dingpass.db"
PUBLIC_BASE_URL = "http://127.0.0.1:8000"
BACKEND_URL = "http://127.0.0.1:8001"
CATALOGUE_FILE = "catalogue.toml"
RATE_LIMIT_PER_IP = 20
RATE_LIMIT_PER_EMAIL = 5
RATE_LIMIT_WINDOW = 3600
"""Seconds; the limits above count applications within one window."""
BACKEND_TIMEOUT = 5
"""Seconds the frontend waits for the backend before answering 504."""
SIGNATURE_MAX_AGE = 300
"""Seconds a signed frontend-to-backend request stays acceptable."""
MAX_BODY = 16 * 1024
"""Bytes: larger request bodies are refused with 413."""
CALLBACK_TOLERANCE = 300
"""Seconds a DingTalk callback's timestamp may differ from ours."""
CALLBACK_PATH = "/dingtalk/callback"
DINGTALK_API = "https://api.dingtalk.com"
SANDBOX_URL = "http://127.0.0.1:8002"
"""The DingTalk sandbox of `dingpass dev`; development never talks to the real DingTalk."""
FORM_SOURCES = (
    "number",
    "product",
    "product_version",
    "feature_code",
    "company",
    "contact",
    "email",
    "phone",
    "quantity",
    "validity",
    "note",
    "status_url",
)
FORM_FIELDS = (
    ("申请编号", "number"),
    ("产品", "product"),
    ("公司名称", "company"),
    ("联系人", "contact"),
    ("邮箱", "email"),
    ("电话", "phone"),
    ("机器特征码", "feature_code"),
    ("数量", "quantity"),
    ("有效期", "validity"),
    ("备注", "note"),
)
"""The approval form's component names (labels) and the application field each shows."""
DINGTALK_OAPI = "https://oapi.dingtalk.com"
DINGTALK_DEPT_ID = -1
"""The approval originator's department: -1 is the root. DingTalk refuses a start without one."""
PENDING_REMINDER_HOURS = 24
"""Hours an approval waits before its approvers' robot is reminded (and again each as many)."""
DIGEST_HOUR = 1
"""Hour of the day (UTC) from which the daily digest goes out: 09:00 in China."""
RECONCILE_AFTER = 600
"""Seconds an approval stays pending before the reconciler asks DingTalk about it."""
DINGTALK_CALLS_PER_SECOND = 18.0
"""Two under DingTalk's 20 per API per app: our slots and DingTalk's one-second windows are not
aligned, and a call's way there varies, by tens of milliseconds on a busy instance. At 19 a
one-second window already holds 19 or 20 slots, and bench/burst.py on a loaded machine saw a
call held up after its turn land beside the next and be refused (2 in 1,000); at 18 it takes
two such calls in one window."""
SMTP_PORT = 8025
"""The mail sandbox's port in development; set SMTP_PORT for a real server."""
MAIL_FROM = "DingPass <licenses@dingpass.localhost>"
MAIL_SANDBOX_URL = "http://127.0.0.1:8004"
ROBOT_MESSAGES_PER_MINUTE = 20
"""Messages one group robot takes in any 60 seconds (DingTalk and WeCom alike); one more and a
DingTalk robot refuses everything for ten minutes."""
ROBOT_WINDOW = 61
"""Seconds a send keeps its place in a robot's budget: the platforms' minute, and one second for
sends still on their way when ours ends."""
ROBOT_GATHER = 2
"""Seconds a robot message waits for others to the same robot, so a burst goes as one digest."""
ROBOT_DIGEST_MAX = 30
"""Messages one digest carries at most; more wait for the next one."""
ROBOT_MESSAGE_BYTES = 4000
"""UTF-8 bytes of markdown one robot message carries at most: WeCom takes 4096 (errcode 40058
beyond); DingTalk documents no limit, so the same conservative budget holds for both. A digest
takes messages while it fits; one message alone over it is cut, with "…"."""
ROBOT_TIMEOUT = 5
"""Seconds to wait for a robot's webhook to answer."""
ROBOT_THROTTLE_PAUSE = 600
"""Seconds a robot that answered 'too fast' is left alone: DingTalk's throttle lasts ten minutes."""

DEV_CODE_KEY_FILE = "dev-code-hash-key"
"""In the var folder: the key activation codes are hashed with in development."""
CLOUD_SANDBOX_URL = "http://127.0.0.1:8005"
"""The cloud sandbox (`dingpass dev`, `dingpass sandbox`): VPC, ECS and RAM on loopback."""
CLOUD_REGION = "cn-hangzhou"
"""Where resource plugins create what changes ask for, unless CLOUD_REGION says otherwise."""
