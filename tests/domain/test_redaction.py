"""What a retraining job's stored output may never show: every rule of `keel.domain.redaction`."""

from __future__ import annotations

import pytest

from keel.domain.redaction import REDACTED, looks_secret, redact, secret_values
from keel.domain.tokens import new_token


def test_a_keel_token_is_redacted_wherever_it_appears() -> None:
    token, _ = new_token()
    text = f"read {token} from the admin-token file; sent Bearer {token}."
    shown = redact(text)
    assert token not in shown
    assert shown == f"read keel_{REDACTED} from the admin-token file; sent Bearer keel_{REDACTED}."


def test_known_secret_values_are_redacted_longest_first() -> None:
    webhook_secret = "whsec-0123456789abcdef"
    longer = webhook_secret + "-and-more"
    shown = redact(f"a {longer} b {webhook_secret} c", [webhook_secret, longer])
    assert shown == f"a {REDACTED} b {REDACTED} c"


def test_short_known_values_are_not_searched_for() -> None:
    # A 3-character "secret" would blank out every occurrence of ordinary text.
    assert redact("accuracy 0.91 on 800 rows", ["800"]) == "accuracy 0.91 on 800 rows"


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", f"AWS_SECRET_ACCESS_KEY={REDACTED}"),
        ("db_password: hunter2hunter2", f"db_password: {REDACTED}"),
        ('{"api_key": "abc123"}', f'{{"api_key": "{REDACTED}"}}'),
        ("KEEL_TOKEN=keel_short", f"KEEL_TOKEN={REDACTED}"),
    ],
)
def test_the_value_of_a_secret_looking_assignment_is_redacted(line: str, shown: str) -> None:
    assert redact(line) == shown


def test_a_password_in_a_url_is_redacted() -> None:
    shown = redact("connecting to postgresql://keel:s3cr3t-pw@db.internal:5432/keel")
    assert shown == f"connecting to postgresql://keel:{REDACTED}@db.internal:5432/keel"
    assert redact("see https://example.com/a:b@c") == "see https://example.com/a:b@c"


def test_secret_looking_environment_names() -> None:
    env = {
        "KEEL_TOKEN": "keel_abc",
        "GITHUB_TOKEN": "ghp_x",
        "DB_PASSWORD": "pw",
        "SIGNING_SECRET": "s",
        "AWS_REGION": "eu-west-1",
        "API_KEY": "k",
        "HOME": "/root",
        "PATH": "/usr/bin",
        "EMPTY_TOKEN": "",
    }
    assert sorted(secret_values(env)) == sorted(["keel_abc", "ghp_x", "pw", "s", "eu-west-1", "k"])
    assert not looks_secret("LANG")


def test_ordinary_training_output_is_left_alone() -> None:
    text = "epoch 3/10 loss=0.412 accuracy=0.903\ntraining on 800 labelled rows\n"
    assert redact(text, ["not-in-the-text-at-all"]) == text
