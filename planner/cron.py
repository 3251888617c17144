"""Cron schedules as a Kubernetes CronJob reads them, and the runs one starts in a window.

The CronJob controller parses `spec.schedule` with robfig/cron's standard parser: five fields
(minute, hour, day of month, month, day of week) of numbers, ranges, steps, lists, `*` and `?`,
with month and weekday names, or one of the descriptors `@yearly`, `@annually`, `@monthly`,
`@weekly`, `@daily`, `@midnight` and `@hourly`; no seconds field, no `L`, `W` or `#`, and no
`TZ=` prefix (the CronJob's `timeZone` carries the zone). croniter, which counts the runs,
reads more than that, so what the controller would refuse is refused here first.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
               "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
               "@hourly": "0 * * * *"}
_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
_FIELDS = (("minute", r"[0-9*?,/-]+"), ("hour", r"[0-9*?,/-]+"),
           ("day of month", r"[0-9*?,/-]+"), ("month", rf"(?:[0-9*?,/-]|{_MONTHS})+"),
           ("day of week", rf"(?:[0-9*?,/-]|{_DAYS})+"))
# croniter returns the first run after its start; starting a second early counts a run at
# the window's first instant.
_TICK = timedelta(seconds=1)


def expression(schedule: str) -> str:
    """The five-field form of `schedule` (a descriptor spelt out)."""
    return DESCRIPTORS.get(schedule.strip(), schedule.strip())


def schedule_problem(schedule: str) -> str | None:
    """Why a CronJob would refuse `schedule`, or None."""
    from croniter import CroniterBadDateError, croniter

    text = schedule.strip()
    if text.startswith("@"):
        if text in DESCRIPTORS:
            return None
        return f"'{text}' is not a descriptor the CronJob knows ({', '.join(DESCRIPTORS)})"
    fields = text.split()
    if len(fields) != len(_FIELDS):
        return (f"'{text}' has {len(fields)} fields; a CronJob's schedule has five: minute, "
                "hour, day of month, month, day of week")
    for value, (name, pattern) in zip(fields, _FIELDS, strict=True):
        if not re.fullmatch(pattern, value, flags=re.IGNORECASE):
            return (f"'{value}' is not a {name} field a CronJob reads: numbers, ranges, steps, "
                    "lists, '*' and '?' (and names in month and day of week); no L, W or #")
    if not croniter.is_valid(text):
        return f"'{text}' is not a valid cron schedule (a value out of its field's range?)"
    try:  # a date no month has (30 February) never starts a run
        croniter(text, datetime(2027, 1, 1), max_years_between_matches=8).get_next(datetime)
    except CroniterBadDateError:
        return f"'{text}' never starts a run: no month has that day"
    return None


def time_zone_problem(name: str) -> str | None:
    """Why `name` is not an IANA time zone here, or None."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"'{name}' is not an IANA time zone (such as Etc/UTC or Europe/Berlin)"
    return None


def starts(schedule: str, time_zone: str | None, start: datetime, end: datetime,
           limit: int) -> list[datetime]:
    """The times `schedule` starts a run in [start, end), read in `time_zone` (default UTC),
    at most `limit + 1` of them: a caller learns that there are more than `limit` without
    counting every one."""
    from zoneinfo import ZoneInfo

    from croniter import CroniterBadDateError, croniter

    zone = ZoneInfo(time_zone or "UTC")
    # the search for the next start gives up after a year: a leap day's schedule has none in
    # most years' windows
    runs = croniter(expression(schedule), start.astimezone(zone) - _TICK,
                    max_years_between_matches=1)
    found: list[datetime] = []
    while len(found) <= limit:
        try:
            moment = runs.get_next(datetime)
        except CroniterBadDateError:
            break
        if moment >= end:
            break
        found.append(moment)
    return found
