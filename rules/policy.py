"""Policy files (TOML): loading, includes, overrides, validation with line numbers.

File layout::

    include = ["cn"]              # presets (rules/presets/<name>.toml) or relative paths
    default_region = "CN"         # region for national-form numbers
    home_area_code = "10"         # optional: completes local numbers dialled without one
    timezone = "Asia/Shanghai"    # zone when neither the number nor the window gives one

    [causes]                      # Q.850 cause per reason code (overrides the defaults)
    quiet_hours = 19

    [lists.dnc]                   # lists by name; the store supplies entries
    kind = "dnc"                  # dnc | blacklist | complaint | register | allow | consent
    scope = "global"              # global | tenant | campaign (+ scope_key)
    max_age_days = 31             # registers only: freshness limit of the last import
    exempts = ["quiet_hours"]     # allow/consent lists: rule ids the listed numbers skip

    [windows.business]            # allowed hours; days not listed are closed
    hours = { weekdays = "09:00-21:00", sat = ["10:00-12:00", "14:00-18:00"] }
    holidays = [2026-10-01]       # closed all day unless holiday_hours is given
    workdays = [2026-10-10]       # make-up working days (调休): weekday hours that day
    zone = "Asia/Shanghai"        # fallback zone; callee_zone = true uses the number's

    [[rules]]
    id = "dnc"                    # unique; names the rule in every verdict
    kind = "lists"                # see rules/checks*.py for the kinds and parameters
    mode = "enforce"              # enforce | shadow
    cause = 21                    # optional; default from [causes] / built-in table
    announcement = "ss-noservice" # optional sound played before the hangup
    message = "..."               # optional template: {detail} {number} {rule} ...
    purposes = ["marketing"]      # optional filter on the call purpose
    regions = ["US"]              # optional filter on the destination's region
    provinces = ["FL"]            # optional filter on the destination's province/state
    lists = ["dnc"]               # kind parameters follow as plain keys

Include and override semantics: includes are read first, in order (each may include
others; cycles are an error), then the file itself is laid over the result:

* ``[[rules]]``: a rule whose ``id`` already exists in an included file replaces it in place (keeping its
  position in the order). If the overriding block has no ``kind`` it is a patch: only the
  keys it gives replace the earlier ones (``id = "x"`` + ``mode = "shadow"`` turns a
  preset rule to shadow; ``enabled = false`` removes it). New ids are appended. The
  same id twice in one file is an error.
* ``[lists.X]``, ``[windows.X]``: same name replaces the whole table.
* ``[causes]``: merged key by key; top-level scalars: the later file wins.

Every problem is collected (not just the first) with file, line and key, and raised as
one ``PolicyError``. ``PolicyHolder.reload()`` swaps only when the new file is good.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rules.errors import PolicyError, PolicyIssue
from rules.holidays import Calendar, combine, load_calendar
from rules.packs import read_pack
from rules.policy_types import Policy
from rules.policy_validate import RawItem, validate

__all__ = [
    "PRESET_DIR",
    "PolicyHolder",
    "default_policy",
    "load_policy",
    "parse_policy",
    "preset_names",
]

PRESET_DIR = Path(__file__).parent / "presets"
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")
_TOML_POS = re.compile(r"at line (\d+)")


class _Lines:
    """Finds the line of a table or key in TOML text (tomllib gives no positions)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: list[tuple[int, str]] = []  # (0-based line index, dotted header)
        for i, line in enumerate(self.lines):
            m = _HEADER.match(line)
            if m:
                name = re.sub(r"\s*\.\s*", ".", m.group(2)).replace('"', "").replace("'", "")
                self.headers.append((i, name))

    def block(self, header: str, index: int = 0) -> tuple[int, int]:
        """0-based [start, end) of the ``index``-th block with this header ("" = top)."""
        if header == "":
            end = self.headers[0][0] if self.headers else len(self.lines)
            return 0, end
        seen = 0
        for pos, (line, name) in enumerate(self.headers):
            if name == header:
                if seen == index:
                    end = self.headers[pos + 1][0] if pos + 1 < len(self.headers) else len(self.lines)
                    return line, end
                seen += 1
        return 0, 0

    def line_of(self, header: str, index: int = 0, key: str | None = None) -> int:
        """1-based line of ``key`` in the block, or of the block header; 0 if unknown."""
        start, end = self.block(header, index)
        if key is not None:
            pat = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*[=.]")
            for i in range(start, end):
                if pat.match(self.lines[i]):
                    return i + 1
        if end == 0:
            return 0
        return start + 1 if header else 1


@dataclass
class _Raw:
    """The merged, not yet validated content of a file and its includes."""

    top: dict[str, RawItem] = field(default_factory=dict)
    rules: list[RawItem] = field(default_factory=list)
    lists: dict[str, RawItem] = field(default_factory=dict)
    windows: dict[str, RawItem] = field(default_factory=dict)
    causes: dict[str, RawItem] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)
    enforcement: dict[str, RawItem] = field(default_factory=dict)
    packs: list[RawItem] = field(default_factory=list)
    calendars: list[Calendar] = field(default_factory=list)


@dataclass(frozen=True)
class _Includes:
    """What ``include`` may name: presets always; files only with ``files``, and then
    only under ``root`` when one is given."""

    files: bool = True
    root: Path | None = None

    def allows(self, path: Path) -> bool:
        return self.files and (self.root is None or path.is_relative_to(self.root))


def parse_policy(
    text: str,
    filename: str = "<policy>",
    base_dir: Path | None = None,
    *,
    include_files: bool = True,
    include_root: Path | None = None,
) -> Policy:
    """Parse and validate policy text. Raises ``PolicyError`` listing every problem.

    ``include_files=False``: ``include`` names presets only; ``include_root``: included
    files must lie under it. An include outside them is reported as an unknown preset,
    whether or not the file exists."""
    issues: list[PolicyIssue] = []
    raw = _Raw()
    rule = _Includes(include_files, include_root.resolve() if include_root else None)
    _read(text, filename, base_dir or Path.cwd(), raw, issues, (filename,), rule)
    if issues:  # an unreadable part: what validation would add is noise
        raise PolicyError(issues)
    calendars = combine(raw.calendars)
    try:
        policy = validate(raw.top, raw.rules, raw.lists, raw.windows, raw.causes, issues,
                          calendars)
    except RecursionError:
        issues.append(PolicyIssue(filename, 0, "", "nested too deeply"))
        policy = None
    packs = tuple(p for item in raw.packs if (p := read_pack(item, issues)) is not None)
    if issues:
        raise PolicyError(issues)
    assert policy is not None
    return Policy(
        rules=policy.rules,
        lists=policy.lists,
        windows=policy.windows,
        causes=policy.causes,
        default_region=policy.default_region,
        timezone=policy.timezone,
        includes=tuple(raw.includes),
        source=filename,
        enforcement={k: v.value for k, v in raw.enforcement.items()},
        enforcement_origin={k: (v.file, v.line) for k, v in raw.enforcement.items()},
        home_area_code=policy.home_area_code,
        packs=packs,
        calendars=calendars,
    )


def load_policy(path: str | Path) -> Policy:
    """Read a policy file (the only I/O in rules/, with preset reads)."""
    p = Path(path)
    text = _read_text(p)
    if isinstance(text, PolicyIssue):
        raise PolicyError([text])
    return parse_policy(text, str(p), p.parent)


def _read_text(path: Path, file: str | None = None, line: int = 0,
               key: str = "") -> str | PolicyIssue:
    """The file's text, or the issue saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return PolicyIssue(file or str(path), line, key,
                           f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})")
    except (OSError, ValueError) as exc:
        return PolicyIssue(file or str(path), line, key, f"cannot read {path}: {exc}")


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def default_policy() -> Policy:
    """The embedded demo policy (rules/presets/demo.toml)."""
    return load_policy(PRESET_DIR / "demo.toml")


def _read(
    text: str,
    filename: str,
    base_dir: Path,
    raw: _Raw,
    issues: list[PolicyIssue],
    stack: tuple[str, ...],
    rule: _Includes,
) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POS.search(str(exc))
        issues.append(PolicyIssue(filename, int(m.group(1)) if m else 0, "", f"TOML: {exc}"))
        return
    except RecursionError:
        issues.append(PolicyIssue(filename, 0, "", "TOML: arrays or tables nested too deeply"))
        return
    if _depth(data) > MAX_DEPTH:
        issues.append(PolicyIssue(filename, 0, "", f"nested more than {MAX_DEPTH} levels deep"))
        return
    lines = _Lines(text)
    _read_includes(data.pop("include", []), filename, base_dir, lines, raw, issues, stack, rule)
    for key, value in data.items():
        if key == "rules":
            _merge_rules(value, filename, lines, raw, issues)
        elif key == "enforcement":
            # triggers and grading: validated by outguard.enforcement, not here
            if not isinstance(value, dict):
                issues.append(PolicyIssue(filename, lines.line_of("", 0, key), key, "must be a table"))
                continue
            for name, item in value.items():
                line = lines.line_of("enforcement", 0, name) or lines.line_of(f"enforcement.{name}")
                raw.enforcement[name] = RawItem(item, filename, line, f"enforcement.{name}", None)
        elif key == "calendars":  # holiday calendar files (rules/holidays.py)
            _read_calendars(value, filename, base_dir, lines, raw, issues, rule)
        elif key == "pack":  # sources and the date they were checked (rules/packs.py)
            raw.packs.append(RawItem(value, filename, lines.line_of("pack"), "pack",
                                     _pack_lines(lines)))
        elif key in ("lists", "windows", "causes"):
            if not isinstance(value, dict):
                issues.append(PolicyIssue(filename, lines.line_of("", 0, key), key, "must be a table"))
                continue
            target = getattr(raw, key)
            for name, item in value.items():
                header = key if key == "causes" else f"{key}.{name}"
                line = lines.line_of(header, 0, name if key == "causes" else None)
                target[name] = RawItem(item, filename, line, f"{key}.{name}", lines_of(lines, header))
        else:
            raw.top[key] = RawItem(value, filename, lines.line_of("", 0, key), key, None)


def _pack_lines(lines: _Lines) -> Callable[[str], int]:
    """Lines in a [pack] table and its [[pack.sources]] blocks ("sources[2].basis")."""

    def line(key: str) -> int:
        m = re.fullmatch(r"sources\[(\d+)\](?:\.(\w+))?", key)
        if m is None:
            return lines.line_of("pack", 0, key)
        return lines.line_of("pack.sources", int(m.group(1)), m.group(2))

    return line


def lines_of(lines: _Lines, header: str, index: int = 0) -> Callable[[str], int]:
    """A function giving the line of a key inside one block."""
    return lambda key: lines.line_of(header, index, key)


def _read_includes(
    value: object,
    filename: str,
    base_dir: Path,
    lines: _Lines,
    raw: _Raw,
    issues: list[PolicyIssue],
    stack: tuple[str, ...],
    rule: _Includes,
) -> None:
    line = lines.line_of("", 0, "include")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        issues.append(PolicyIssue(filename, line, "include", "must be a list of preset names"))
        return
    for name in value:
        path = _resolve(name, base_dir, rule)
        if path is None or not _is_file(path):
            known = ", ".join(preset_names())
            issues.append(PolicyIssue(filename, line, "include", f"unknown preset {name!r} (known: {known})"))
            continue
        if str(path) in stack:
            issues.append(PolicyIssue(filename, line, "include", f"include cycle through {name!r}"))
            continue
        text = _read_text(path, filename, line, "include")
        if isinstance(text, PolicyIssue):
            issues.append(text)
            continue
        raw.includes.append(name)
        _read(text, str(path), path.parent, raw, issues, (*stack, str(path)), rule)


def _read_calendars(value: object, filename: str, base_dir: Path, lines: _Lines, raw: _Raw,
                    issues: list[PolicyIssue], rule: _Includes) -> None:
    """``calendars = ["holidays-2027.toml"]``: holiday calendar files (paths relative to the
    policy file, read as includes are) adding years to, or replacing years of, the shipped
    calendars of the same name; their problems name their own file and line."""
    line = lines.line_of("", 0, "calendars")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        issues.append(PolicyIssue(filename, line, "calendars",
                                  "must be a list of calendar files"))
        return
    for name in value:
        path = _resolve(name, base_dir, rule) if name.endswith(".toml") else None
        if path is None or not _is_file(path):
            issues.append(PolicyIssue(filename, line, "calendars", f"{name!r}: no calendar "
                                      "file there that this policy may read (a .toml path)"))
            continue
        try:
            raw.calendars.append(load_calendar(path))
        except PolicyError as exc:
            issues.extend(exc.issues)


def _resolve(name: str, base_dir: Path, rule: _Includes) -> Path | None:
    """The file an include names, or None when it names none this policy may read."""
    if "\0" in name:
        return None
    if "/" in name or name.endswith(".toml"):
        try:
            path = (base_dir / name).resolve()
        except (OSError, RuntimeError, ValueError):
            return None
        return path if rule.allows(path) else None
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        return None
    return PRESET_DIR / f"{name}.toml"


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


#: deeper than any policy needs; deeper TOML is refused before validation walks it
MAX_DEPTH = 32


def _depth(value: object, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _merge_rules(
    value: object, filename: str, lines: _Lines, raw: _Raw, issues: list[PolicyIssue]
) -> None:
    if not isinstance(value, list):
        issues.append(PolicyIssue(filename, lines.line_of("", 0, "rules"), "rules", "use [[rules]] blocks"))
        return
    for n, item in enumerate(value):
        line = lines.line_of("rules", n)
        if not isinstance(item, dict):
            issues.append(PolicyIssue(filename, line, f"rules[{n}]", "must be a table"))
            continue
        new = RawItem(dict(item), filename, line, f"rules[{n}]", lines_of(lines, "rules", n))
        rid = item.get("id")
        pos = next((i for i, r in enumerate(raw.rules) if r.value.get("id") == rid), None)
        if pos is not None and raw.rules[pos].file == filename:
            first = raw.rules[pos].line
            issues.append(PolicyIssue(filename, line, f"rules[{n}].id", f"duplicate rule id {rid!r} (first at line {first})"))
        elif pos is None or not isinstance(rid, str):
            raw.rules.append(new)
        elif "kind" in item:
            raw.rules[pos] = new
        else:
            merged = {**raw.rules[pos].value, **item}
            raw.rules[pos] = RawItem(merged, filename, line, f"rules[{n}]", new.key_line)
    raw.rules = [r for r in raw.rules if r.value.get("enabled", True) is not False]


class PolicyHolder:
    """Holds the current policy; ``reload()`` swaps only when the new file is valid."""

    def __init__(self, path: str | Path, policy: Policy | None = None) -> None:
        self.path = Path(path)
        self.policy: Policy = policy if policy is not None else load_policy(self.path)
        self.last_error: PolicyError | None = None

    def reload(self) -> bool:
        """Re-read the file. True when swapped; False (old policy kept) on errors."""
        try:
            new = load_policy(self.path)
        except PolicyError as exc:
            self.last_error = exc
            return False
        self.policy = new
        self.last_error = None
        return True
