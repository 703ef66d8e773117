"""The names of the license path's job kinds, for the modules that record such work.

Recording a job needs only its kind's name; importing the handlers would bring the DingTalk
client, SMTP and the license signer into functions that never run them (the approval
function's cold start).
"""

OPEN_INSTANCE = "open_instance"
ADOPT_INSTANCE = "adopt_instance"
ISSUE_LICENSE = "issue_license"
SEND_LICENSE_MAIL = "send_license_mail"
SEND_REFUSAL_MAIL = "send_refusal_mail"
