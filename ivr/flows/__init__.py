"""The IVR's business flows, by the name menu files use for them in action nodes.

Each flow is ``async def flow(ctx: CallContext) -> Step`` and reads top to bottom.
"""
from ivr import speech
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

# Every prompt the flows and the engine play besides the menus' own and number fragments.
FLOW_PROMPTS = frozenset({
    "ivr/account-locked", "ivr/account-not-found", "ivr/agent-hours", "ivr/attempts-left",
    "ivr/balance-is", "ivr/call-in-hours", "ivr/deposit-amount", "ivr/goodbye",
    "ivr/loan-balance-is", "ivr/loan-settled", "ivr/loan-tail", "ivr/locked-until",
    "ivr/monthly-deposit-is", "ivr/monthly-repayment-is", "ivr/no-deposits", "ivr/no-loan",
    "ivr/no-overdue", "ivr/overdue-periods", "ivr/overdue-principal-is", "ivr/paid-up-to",
    "ivr/password-changed", "ivr/password-not-changed", "ivr/password-wrong",
    "ivr/passwords-differ", "ivr/recent-deposits", "ivr/sms-sent", "ivr/sms-unavailable",
    "ivr/status-closed", "ivr/status-is", "ivr/status-normal", "ivr/status-other",
    "ivr/status-sealed", "ivr/system-busy", "ivr/thanks-goodbye", "ivr/times", "ivr/to",
    "ivr/transferring", "ivr/try-later", "unit/qi",
})


# Played by the dialplan itself (dialplans/extensions.conf, hotline-prompt), daemon or not.
DIALPLAN_PROMPTS = frozenset({"ivr/fallback-apology", "ivr/goodbye"})


def all_prompts(menu) -> set[str]:
    """Every prompt a call with this menu may play: for ``hotline prompts check``."""
    return menu.prompts() | FLOW_PROMPTS | DIALPLAN_PROMPTS | set(speech.fragments())
