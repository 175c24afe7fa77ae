"""Signatures a Standard Webhooks client accepts, the backoff, and which addresses may be called."""

from __future__ import annotations

import random
import socket
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from webhooks import addresses, signing
from webhooks.backoff import retry_delay_ms


def test_the_signature_is_what_the_standardwebhooks_package_verifies():
    secret = signing.secret_new()
    body = b'{"type":"message.received","timestamp":"2026-01-01T00:00:00Z","data":{"text":"h\xc3\xa9"}}'
    headers = signing.headers([secret], event_id="msg_1", timestamp=int(time.time()), body=body)
    assert Webhook(secret).verify(body, headers)["type"] == "message.received"
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.secret_new()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_during_a_rotation_both_secrets_verify():
    old, new = signing.secret_new(), signing.secret_new()
    body = b"{}"
    headers = signing.headers([new, old], event_id="msg_2", timestamp=int(time.time()), body=body)
    assert headers["webhook-signature"].count("v1,") == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_the_backoff_doubles_with_jitter_up_to_its_cap(settings):
    settings.WEBHOOK_RETRY_BASE_MS, settings.WEBHOOK_RETRY_MAX_MS = 1000, 60_000
    rng = random.Random(1)
    for attempt, base in [(1, 1000), (2, 2000), (3, 4000), (6, 32_000), (7, 60_000), (30, 60_000)]:
        delays = [retry_delay_ms(attempt, rng=rng) for _ in range(50)]
        assert all(0.8 * base <= d <= 1.2 * base for d in delays)
        assert len(set(delays)) > 1, "jittered"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x", "http://localhost:8000/x", "http://10.1.2.3/", "http://192.168.0.10/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[fe80::1]/", "http://224.0.0.1/",
    "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/",
])
def test_private_loopback_link_local_multicast_and_reserved_addresses_are_refused(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(addresses.ReceiverRefused) as refused:
        addresses.resolve(url)
    assert refused.value.status == 400


@pytest.mark.parametrize("url", ["ftp://example.com/", "http:///x", "http://user:pw@93.184.215.14/",
                                 "http://no-such-host.invalid/"])
def test_urls_that_are_not_plain_http_receivers_are_refused(settings, url):
    with pytest.raises(addresses.ReceiverRefused):
        addresses.resolve(url)


def test_a_name_is_pinned_to_the_public_address_it_resolved_to(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    answers = {"hooks.example.com": ["93.184.215.14"]}

    def fake(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    target = addresses.resolve("https://hooks.example.com/in?x=1")
    assert (target.address, target.host, target.port, target.path) == ("93.184.215.14", "hooks.example.com", 443,
                                                                          "/in?x=1")
    # DNS rebinding: the same name now answers with a loopback address (or one of each).
    for rebound in (["127.0.0.1"], ["93.184.215.14", "127.0.0.1"]):
        answers["hooks.example.com"] = rebound
        with pytest.raises(addresses.ReceiverRefused):
            addresses.resolve("https://hooks.example.com/in")


def test_with_allow_private_on_loopback_is_fine(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert addresses.resolve("http://127.0.0.1:8080/h").address == "127.0.0.1"
