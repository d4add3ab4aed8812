"""The IVR's business flows, by the name menu files use for them in action nodes.

Each flow is ``async def flow(ctx: CallContext) -> Step`` and reads top to bottom.
"""
from ivr.flows.balance import balance, deposits
from ivr.flows.loan import loan
from ivr.flows.password import change_password
from ivr.flows.sms_balance import sms_balance
from ivr.flows.survey import goodbye
from ivr.flows.transfer import transfer

FLOWS = {
    "balance": balance,
    "deposits": deposits,
    "loan": loan,
    "change_password": change_password,
    "sms_balance": sms_balance,
    "transfer": transfer,
    "goodbye": goodbye,
}
