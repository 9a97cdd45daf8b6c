"""Number masking: the ONE place that decides how a number is shown (privacy on by default).

One setting, ``[api] show_numbers`` in the settings file (or ``OUTGUARD_API_SHOW_NUMBERS``),
governs every output alike: logs of both adapters (ARI and FastAGI), the HTTP API, the live
stream, the dashboard (which reads the API) and the access log. ``outguard.server`` applies
it with ``configure(settings)`` when the service is built; the API's ``views.masker`` reads
the same setting.

``mask`` never changes how many digits a number has and never invents or reorders a digit:
every digit is either shown in place or replaced by exactly one ``*``; everything else
(``+``, spaces, dashes, letters of a raw dialled string) is kept as it is. Short codes
(``+86:95588``, public service numbers) are shown whole.
"""

from __future__ import annotations

from typing import Protocol

_SHOW = False


class _HasApi(Protocol):
    @property
    def api(self) -> _HasShow: ...


class _HasShow(Protocol):
    @property
    def show_numbers(self) -> bool: ...


def show_numbers(enabled: bool) -> None:
    """Turn masking off (True) or on (False) process-wide."""
    global _SHOW
    _SHOW = enabled


def configure(settings: _HasApi) -> None:
    """Apply the settings' ``api.show_numbers`` to every log line of this process."""
    show_numbers(bool(settings.api.show_numbers))


def showing_numbers() -> bool:
    return _SHOW


def mask(number: str) -> str:
    """Hide the middle digits unless numbers are shown (see ``show_numbers``)."""
    return number if _SHOW else masked(number)


def masked(number: str) -> str:
    """+8613800138000 -> +86138****8000: keeps the country code and the first and last
    digits an operator needs to recognise a call, hides the rest.

    With ``+``: the first 5 digits (country code and the start of the national number) and
    the last 4 stay; in national or raw form the first 3 and the last 4. Numbers of fewer
    than 10 digits keep a third at each end (``12345678`` -> ``12****78``); numbers of fewer
    than 3 digits and short codes are shown as they are.
    """
    if ":" in number:
        return number  # short code: a public service number
    n = sum(1 for c in number if "0" <= c <= "9")
    if n < 3:
        return number
    if n >= 10:
        head, tail = (5 if number.lstrip().startswith("+") else 3), 4
    else:
        head = tail = n // 3
    out: list[str] = []
    i = 0
    for c in number:
        if "0" <= c <= "9":
            out.append(c if i < head or i >= n - tail else "*")
            i += 1
        else:
            out.append(c)
    return "".join(out)
