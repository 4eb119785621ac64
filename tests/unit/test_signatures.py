"""SSH signatures of governance requests: the format ssh-keygen makes and checks, both ways."""

import subprocess

import pytest

from riskcore.promotion import load_promotion_policy
from riskcore.signatures import NAMESPACE, SignatureRefused, SignedRequest, generate_key, parse_allowed_signers, sign, verify


def _keygen(folder, identity):
    key = folder / identity
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", identity, "-f", str(key)], check=True)
    return key


def _signers(*pairs):
    return parse_allowed_signers("".join(f'{identity} namespaces="{NAMESPACE}" {public}\n' for identity, public in pairs), "allowed_signers")


def test_a_signature_made_by_ssh_keygen_verifies_here_and_ours_verifies_with_ssh_keygen(tmp_path):
    key = _keygen(tmp_path, "alice")
    message = SignedRequest("approve", "retail_pd", "3", "alice", "gates pass", "2026-12-02T01:00:00Z").message()
    (tmp_path / "request.json").write_bytes(message)
    subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(tmp_path / "request.json")], check=True, capture_output=True)
    signers = _signers(("alice", (tmp_path / "alice.pub").read_text().strip()))
    verify(message, (tmp_path / "request.json.sig").read_text(), signers, "alice")

    ours = sign(message, key.read_bytes())
    (tmp_path / "ours.sig").write_text(ours)
    (tmp_path / "allowed").write_text(f"alice {(tmp_path / 'alice.pub').read_text()}")
    checked = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", "alice", "-n", NAMESPACE, "-s", str(tmp_path / "ours.sig")],
        input=message,
        capture_output=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert b"Good" in checked.stdout


def test_what_a_signature_does_not_prove_is_refused(tmp_path):
    alice, mallory = generate_key("alice"), generate_key("mallory")
    signers = _signers(("alice", alice[1]))
    request = SignedRequest("approve", "retail_pd", "3", "alice", "gates pass", "2026-12-02T01:00:00Z")
    genuine = sign(request.message(), alice[0])
    verify(request.message(), genuine, signers, "alice")
    with pytest.raises(SignatureRefused, match="does not match the request"):
        verify(SignedRequest("approve", "retail_pd", "4", "alice", "gates pass", "2026-12-02T01:00:00Z").message(), genuine, signers, "alice")
    with pytest.raises(SignatureRefused, match="'alice' has no key in allowed_signers"):
        verify(request.message(), sign(request.message(), mallory[0]), signers, "alice")
    with pytest.raises(SignatureRefused, match="'bob' has no key"):
        verify(request.message(), genuine, signers, "bob")
    with pytest.raises(SignatureRefused, match="namespace 'git'"):
        verify(request.message(), sign(request.message(), alice[0], namespace="git"), signers, "alice")
    with pytest.raises(SignatureRefused, match="not an SSH signature"):
        verify(request.message(), "approved, trust me", signers, "alice")
    tampered = genuine.replace(genuine.splitlines()[3], genuine.splitlines()[3][::-1])
    with pytest.raises(SignatureRefused):
        verify(request.message(), tampered, signers, "alice")


def test_a_key_listed_for_other_namespaces_does_not_sign_governance():
    alice = generate_key("alice")
    signers = parse_allowed_signers(f'alice namespaces="git,file" {alice[1]}\n', "allowed_signers")
    message = b"{}"
    with pytest.raises(SignatureRefused, match="no key"):
        verify(message, sign(message, alice[0]), signers, "alice")


@pytest.mark.parametrize(
    "line, error",
    [
        ("alice ssh-rsa AAAAB3NzaC1yc2E", "expected `principals"),
        ('alice cert-authority,namespaces="risk-governance" ssh-ed25519 AAAA', "expected `principals"),
        ('alice valid-before="20300101" ssh-ed25519 AAAA', "expected `principals"),
        ("*@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "patterns are refused"),
        ("alice ssh-ed25519 not-base64!", "not valid base64"),
        ("alice ssh-ed25519 AAAAC3NzaC1yc2EAAAAA", "not an ssh-ed25519 public key"),
    ],
)
def test_a_wrong_allowed_signers_line_is_named(line, error):
    with pytest.raises(ValueError, match=rf"allowed_signers:2: .*{error}"):
        parse_allowed_signers(f"# people\n{line}\n", "allowed_signers")


def test_the_policy_gives_each_identity_only_its_actions():
    policy = load_promotion_policy()
    approver = policy.approvers[0]
    assert policy.may(approver, "approve") and policy.may(approver, "reject") and policy.may(approver, "rollback")
    assert policy.may("performance_rollback_sensor", "rollback")
    assert not policy.may("performance_rollback_sensor", "approve") and not policy.may("performance_rollback_sensor", "reject")
    assert not policy.may("someone@example.com", "rollback")
    assert policy.allowed("approve") == list(policy.approvers)


def test_only_a_rollout_rollback_signs_a_step_and_the_step_is_signed():
    """Requests without from_step sign the bytes they signed before it existed; with it, the step is part of what was signed."""
    plain = SignedRequest("approve", "retail_pd", "3", "alice", "gates pass", "2026-12-02T01:00:00Z").message()
    assert (
        plain
        == b'{"action":"approve","from_version":null,"identity":"alice","model":"retail_pd","reason":"gates pass","signed_at":"2026-12-02T01:00:00Z","version":"3"}'
    )
    at = [SignedRequest("rollback", "retail_pd", None, "svc", "floor", "2026-12-02T01:00:00Z", "3", step).message() for step in (1, 2)]
    assert b'"from_step":1' in at[0] and at[0] != at[1]
