"""SCRAM against the RFC 7677 test vector, and our server against our client."""

from __future__ import annotations

import base64

import pytest

from streamplane.credentials.scram import ScramClient, ScramCredential, ScramError, ScramServer

RFC7677_SERVER_FIRST = (b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                        b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")


def test_client_matches_rfc7677_vector() -> None:
    client = ScramClient("SCRAM-SHA-256", "user", "pencil")
    client._nonce = "rOprNGfwEbeRWgbNEkqO"
    client._bare = "n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert client.first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final = client.final(RFC7677_SERVER_FIRST)
    assert final == (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    with pytest.raises(ScramError, match="signature is wrong"):
        client.verify(b"v=" + base64.b64encode(b"x" * 32))


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_server_accepts_the_right_password_only(mechanism: str) -> None:
    credential = ScramCredential.derive(mechanism, "s3cret, with = signs")
    for password, ok in (("s3cret, with = signs", True), ("wrong", False)):
        server = ScramServer(mechanism, b"decoy")
        client = ScramClient(mechanism, "key,=odd", password)
        first = server.parse_first(client.first())
        assert first.user == "key,=odd"
        final = client.final(server.first(credential))
        if ok:
            client.verify(server.final(final))
        else:
            with pytest.raises(ScramError, match="invalid credentials"):
                server.final(final)


def test_unknown_user_gets_a_stable_decoy_salt_and_fails() -> None:
    salts = []
    for _ in range(2):
        server = ScramServer("SCRAM-SHA-512", b"decoy")
        client = ScramClient("SCRAM-SHA-512", "nobody", "pw")
        server.parse_first(client.first())
        server_first = server.first(None)
        salts.append(server_first.split(b",")[1])
        with pytest.raises(ScramError, match="invalid credentials"):
            server.final(client.final(server_first))
    assert salts[0] == salts[1]


def test_channel_binding_and_tokens_are_refused() -> None:
    with pytest.raises(ScramError, match="channel binding"):
        ScramServer("SCRAM-SHA-512", b"d").parse_first(b"p=tls-unique,,n=u,r=abc")
    with pytest.raises(ScramError, match="delegation tokens"):
        ScramServer("SCRAM-SHA-512", b"d").parse_first(b"n,,n=u,r=abc,tokenauth=true")
