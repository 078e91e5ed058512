"""The dialer's own voice prompts: rendered with espeak-ng and sox as 8 kHz mono 16-bit WAV, the
format pjsua2 plays to a call without resampling, and cached by content.

Rendered on first use and by `dialer prompts build` (which `make setup` runs), not shipped as
files: the safe-harbor message must carry each campaign's seller and call-back number, which only
exist at run time, so the renderer has to be in the product anyway; shipping WAVs beside it
would put binaries in git that drift from their text. A file's name holds a hash of its text,
voice and recipe, so changing a word renders a new file and a cached one is never stale.

Rendering takes espeak-ng about a tenth of a second per prompt: a campaign's prompts are
prepared when it starts (`campaign_prompts`), never on the 2-second safe-harbor path.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SAMPLE_RATE = 8000
VOICE = "en-us"
# Slower than espeak's 175 words a minute: numbers and menu choices over a phone line.
WORDS_PER_MINUTE = 150
# Bump when the rendering changes (voice, filters, level): every cached prompt is re-rendered.
RECIPE_VERSION = 1

# espeak-ng pads its speech with silence: a prompt should start at once (the safe-harbor one
# has to be heard within 2 s) and a caller should not wait through a silent tail.
TRIM_SILENCE = (
    "silence",
    "1",
    "0.02",
    "-45d",
    "reverse",
    "silence",
    "1",
    "0.02",
    "-45d",
    "reverse",
)

SAFE_HARBOR = "safe_harbor"
# 47 CFR 64.1200(a)(7)(i): the message is limited to saying the call was for telemarketing
# purposes, whom it was made for, and a number where a do-not-call request can be made.
SAFE_HARBOR_TEXT = (
    "This call was made for telemarketing purposes, on behalf of {seller}. "
    "To ask not to be called again, please call {callback}."
)
# 47 CFR 64.1200(a)(7)(i)(B): a key-press opt-out during the call, with brief instructions; the
# connector adds the number to the do-not-call list when this key is pressed.
OPT_OUT_DIGIT = "9"
OPT_OUT_TEXT = f" To be added to our do-not-call list now, press {OPT_OUT_DIGIT}."
# The message a campaign leaves on answering machines (`dialer.calls.voicemail`).
VOICEMAIL = "voicemail"

# The IVR prompts the campaign kinds need.
PROMPT_TEXTS: Mapping[str, str] = {
    "survey_scale": "Please answer on a scale of one to five. Press a key from one to five now.",
    "appointment_menu": (
        "To confirm your appointment, press 1. To reschedule, press 2. To cancel, press 3. "
        "To speak to someone, press 0."
    ),
    "appointment_confirmed": "Thank you. Your appointment is confirmed. Goodbye.",
    "appointment_cancelled": "Your appointment has been cancelled. Goodbye.",
    "appointment_moved": "Thank you. Your appointment has been moved. Goodbye.",
    "appointment_taken": ("Sorry, that time has just been taken. We will call you again. Goodbye."),
    "appointment_no_slots": (
        "Sorry, there is no other free time just now. We will call you again. Goodbye."
    ),
    "collections_agent": "To speak to an agent about your account, press 1.",
    "not_understood": "Sorry, I did not get that.",
    "goodbye": "Thank you for your time. Goodbye.",
}
KIND_PROMPTS: Mapping[str, tuple[str, ...]] = {
    "telemarketing": (),
    "survey": ("survey_scale", "not_understood", "goodbye"),
    "appointment": (
        "appointment_menu",
        "appointment_confirmed",
        "appointment_cancelled",
        "appointment_moved",
        "appointment_taken",
        "appointment_no_slots",
        "not_understood",
        "goodbye",
    ),
    "collections": ("collections_agent", "not_understood", "goodbye"),
}


class PromptError(RuntimeError):
    pass


class CampaignLike(Protocol):
    """What the prompts need of a campaign (campaigns.models.Campaign has it)."""

    name: str
    kind: str
    seller_name: str
    callback_number: str | None
    caller_id: str | None
    safe_harbor_message: str
    amd_action: str
    voicemail_message: str


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str

    @property
    def file_name(self) -> str:
        recipe = f"{self.text}\x00{VOICE}\x00{WORDS_PER_MINUTE}\x00v{RECIPE_VERSION}"
        return f"{self.name}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}.wav"


def default_dir() -> Path:
    """$DIALER_PROMPTS_DIR, else the user's cache (~/.cache/dialer/prompts)."""
    configured = os.environ.get("DIALER_PROMPTS_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dialer" / "prompts"


def render(text: str, path: Path) -> None:
    """Speak `text` into `path`: espeak-ng, then sox to 8 kHz mono 16-bit, band-limited to the
    telephone band, edge silence trimmed, normalised to -3 dBFS peak, 0.2 s of silence after."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prompt-", dir=path.parent) as tmp:
        spoken = Path(tmp) / "espeak.wav"
        telephone = Path(tmp) / "telephone.wav"
        commands = (
            ["espeak-ng", "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-w", str(spoken), text],
            ["sox", "-D", str(spoken), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
             str(telephone), "sinc", "300-3400", *TRIM_SILENCE, "norm", "-3", "pad", "0", "0.2"],
        )  # fmt: skip
        for command in commands:
            try:
                subprocess.run(command, check=True, capture_output=True)
            except FileNotFoundError:
                raise PromptError(
                    f"{command[0]} is not installed (scripts/install-system-deps)"
                ) from None
            except subprocess.CalledProcessError as error:
                message = error.stderr.decode(errors="replace").strip()
                raise PromptError(f"{command[0]} failed for {text!r}: {message}") from None
        # Atomic: another process building the same prompt never sees half a file.
        os.replace(telephone, path)


def build(prompt: Prompt, directory: Path | None = None) -> Path:
    """The prompt's WAV, rendered unless a file with its text's hash is already there."""
    path = (directory or default_dir()) / prompt.file_name
    if not path.exists():
        render(prompt.text, path)
    return path


def prompt_path(name: str, directory: Path | None = None) -> Path:
    """A bundled IVR prompt by name (`PROMPT_TEXTS`)."""
    if name not in PROMPT_TEXTS:
        raise KeyError(f"no bundled prompt {name!r}; known: {', '.join(PROMPT_TEXTS)}")
    return build(Prompt(name, PROMPT_TEXTS[name]), directory)


def speakable_number(number: str) -> str:
    """A phone number as espeak-ng should say it: digit by digit, in groups (NANP 3-3-4)."""
    digits = re.sub(r"\D", "", number)
    if not digits:
        raise ValueError(f"phone number {number!r}: no digits in it")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) == 10:
        groups = [digits[:3], digits[3:6], digits[6:]]
    else:
        groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return ", ".join(" ".join(group) for group in groups)


def safe_harbor_text(seller: str, callback: str, message: str = "") -> str:
    """The campaign's own message if it has one (`{seller}` and `{callback}` filled in), else
    the bundled one. Both must name the seller and give the number (47 CFR 64.1200(a)(7)(i))."""
    if not seller.strip():
        raise ValueError(
            "seller_name is empty: the safe-harbor message must name the seller "
            "(47 CFR 64.1200(a)(7)(i))"
        )
    template = message.strip() or SAFE_HARBOR_TEXT
    # A campaign's own message gets the opt-out instructions too, unless it gives them.
    if f"press {OPT_OUT_DIGIT}" not in template.lower():
        template += OPT_OUT_TEXT
    try:
        return template.format(seller=seller.strip(), callback=speakable_number(callback))
    except (KeyError, IndexError) as error:
        raise ValueError(
            f"safe_harbor_message {message!r}: unknown placeholder {error}; "
            "use {seller} and {callback}"
        ) from None


def safe_harbor_prompt(
    seller: str, callback: str, message: str = "", directory: Path | None = None
) -> Path:
    return build(Prompt(SAFE_HARBOR, safe_harbor_text(seller, callback, message)), directory)


def campaign_safe_harbor(campaign: CampaignLike, directory: Path | None = None) -> Path:
    """The campaign's safe-harbor WAV: its own message, or the bundled one with its seller and
    call-back number (else its caller ID, which must take do-not-call requests as well, 47 CFR
    64.1601(e))."""
    callback = campaign.callback_number or campaign.caller_id
    if not callback:
        raise ValueError(
            f"campaign {campaign.name!r}: callback_number and caller_id are both empty; the "
            "safe-harbor message must give a number for do-not-call requests"
        )
    return safe_harbor_prompt(
        campaign.seller_name or "", callback, campaign.safe_harbor_message or "", directory
    )


def voicemail_text(message: str, seller: str = "", callback: str | None = None) -> str:
    """The voicemail message as it is spoken: `{seller}` and `{callback}` filled in. An empty
    message, or a placeholder the campaign cannot fill, is refused naming the field."""
    if not message.strip():
        raise ValueError(
            "voicemail_message is empty: leaving a message on answering machines needs its text"
        )
    values = {"seller": seller.strip(), "callback": speakable_number(callback) if callback else ""}
    try:
        text = message.strip().format(**values)
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(
            f"voicemail_message {message!r}: cannot fill in {error}; "
            "use {seller} and {callback} (braces for nothing else)"
        ) from None
    for name, value in values.items():
        if f"{{{name}}}" in message and not value:
            field = "seller_name" if name == "seller" else "callback_number (or caller_id)"
            raise ValueError(
                f"voicemail_message uses {{{name}}} but the campaign's {field} is empty"
            )
    return text


def campaign_voicemail(campaign: CampaignLike, directory: Path | None = None) -> Path | None:
    """The WAV a campaign leaves on answering machines, rendered now (not when the beep comes);
    None when the campaign hangs up on them."""
    if campaign.amd_action != "message":
        return None
    callback = campaign.callback_number or campaign.caller_id
    text = voicemail_text(campaign.voicemail_message or "", campaign.seller_name or "", callback)
    return build(Prompt(VOICEMAIL, text), directory)


def campaign_prompts(campaign: CampaignLike, directory: Path | None = None) -> dict[str, Path]:
    """Every prompt the campaign may play, rendered now: its kind's IVR prompts, its
    safe-harbor message and its voicemail message if it leaves one."""
    prompts = {name: prompt_path(name, directory) for name in KIND_PROMPTS[campaign.kind]}
    prompts[SAFE_HARBOR] = campaign_safe_harbor(campaign, directory)
    voicemail = campaign_voicemail(campaign, directory)
    if voicemail is not None:
        prompts[VOICEMAIL] = voicemail
    return prompts


def build_bundled(directory: Path | None = None) -> dict[str, Path]:
    """All the bundled IVR prompts (the safe-harbor message needs a campaign)."""
    return {name: prompt_path(name, directory) for name in PROMPT_TEXTS}
