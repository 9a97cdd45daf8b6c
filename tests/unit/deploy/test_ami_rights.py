"""The AMI users the samples and recipes ship (and the sandbox's least-rights user the
recipe test logs in as) grant the same least rights, and filter exactly the events
outguard's listener asks for."""

from __future__ import annotations

import re
from pathlib import Path

from agi.outcomes import ENDED_EVENT, EVENT_FILTERS
from outguard.dialplan_vars import OPTOUT_EVENT

ROOT = Path(__file__).parents[3]
FILES = [ROOT / "dialplan" / "samples" / "manager.conf",
         ROOT / "dialplan" / "recipes" / "freepbx" / "manager_custom.conf"]
SANDBOX = ROOT / "dialplan" / "sandbox" / "manager.conf"


def user_section(text: str, header: str) -> str:
    return text.split(header, 1)[1].split("\n[", 1)[0]


def rights(section: str) -> tuple[str, str, tuple[str, ...]]:
    read = re.search(r"^read = (.*)$", section, re.M)
    write = re.search(r"^write = (.*)$", section, re.M)
    assert read and write
    return (read.group(1), write.group(1),
            tuple(re.findall(r"^eventfilter = (.*)$", section, re.M)))


def test_samples_recipes_and_the_sandbox_least_user_agree() -> None:
    found = {rights(user_section(f.read_text(), "[outguard]")) for f in FILES}
    found.add(rights(user_section(SANDBOX.read_text(), "[{{ami_user}}-least]")))
    assert len(found) == 1
    read, write, _ = found.pop()
    # the hangup handler's UserEvent and the dialplan's opt-out UserEvent
    # ([outguard-optout]); CoreShowChannels. No system, no originate
    assert read == "user" and write == "reporting"


def test_the_event_filters_are_the_ones_the_listener_asks_for() -> None:
    _, _, filters = rights(user_section(FILES[0].read_text(), "[outguard]"))
    wanted = {f.replace("[[:space:]]", "") for f in EVENT_FILTERS if f.startswith("UserEvent")}
    assert set(filters) == wanted == {"UserEvent: " + ENDED_EVENT, "UserEvent: " + OPTOUT_EVENT}


def test_the_suggested_disabledevents_keep_every_event_outguard_reads() -> None:
    """The sample's commented ``disabledevents`` list (for a PBX with no other AMI client)
    must not drop the UserEvents outguard's listener lives on, nor the replies of the
    reconcile's CoreShowChannels (those are action replies, but a name in the list would
    still say the wrong thing); bench/outcomes.py measures exactly this list."""
    from bench.outcomes import quiet_events

    events = quiet_events()
    assert events and len(set(events)) == len(events)
    assert not {"UserEvent", "CoreShowChannel", "CoreShowChannelsComplete",
                "FullyBooted"} & set(events)
    assert all(re.fullmatch(r"[A-Za-z]+", e) for e in events), events
    assert ENDED_EVENT and OPTOUT_EVENT  # raised as UserEvents: UserEvent must stay
