"""The names of the change path's job kinds, for the modules that record such work.

As for the license path's (backend.fulfillment.names): recording a job needs only its kind's
name, and the approval function records these without importing their handlers.
"""

STEP_KIND = "change_step"
OPEN_APPROVAL_KIND = "open_change_approval"
TAKE_REQUEST_KIND = "take_change_request"
CALLBACK_KIND = "change_callback"
COMMENT_KIND = "dingtalk_comment"
NOTICE_KIND = "work_notice"
