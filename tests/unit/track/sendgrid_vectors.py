"""Signed event-webhook vectors copied from the SendGrid Python SDK's own test suite.

Source: github.com/sendgrid/sendgrid-python, `test/unit/test_eventwebhook.py` (MIT); the
older vector is from `test/test_eventwebhook.py`. The payloads are rebuilt exactly as the
SDK's tests build them (sorted keys, compact separators, trailing CRLF on the first).
"""

from __future__ import annotations

import json

PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3G"
    "Rqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M1"
    "5TluLtEZtM="
)
TIMESTAMP = "1600112502"
PAYLOAD = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": (
                    "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0"
                ),
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
)
OTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWH"
    "w8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)

LEGACY_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBce"
    "pxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
)
LEGACY_SIGNATURE = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nl"
    "xFDWYNH2j/0="
)
LEGACY_TIMESTAMP = "1588788367"
LEGACY_PAYLOAD = json.dumps(
    {"event": "test_event", "category": "example_payload", "message_id": "message_id"},
    sort_keys=True,
    separators=(",", ":"),
)
