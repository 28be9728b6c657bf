"""ETags on the public certificate reads: the same body has the same tag, a client holding it gets
304 without a body, and a lifecycle record (once indexed) gives a new body and a new tag."""

from __future__ import annotations

from devicemint.chain import keys
from devicemint.devices.lifecycle import Lifecycle, Stage

from .conftest import Served, sender


def _tag(s: Served, path: str, **params: object) -> str:
    response = s.client.get(path, params=params)
    assert response.status_code == 200, response.text
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    return etag


def test_etags_give_304_until_a_lifecycle_change_is_indexed(served: Served) -> None:
    s = served
    device = s.devices[0]
    paths = {
        "view": (f"/certificates/{device}", {}),
        "verify": (f"/certificates/{device}/verify", {}),
        "list": ("/certificates", {"batch": s.batch_of[device], "limit": 10}),
    }
    tags = {name: _tag(s, path, **params) for name, (path, params) in paths.items()}
    assert len(set(tags.values())) == 3
    for name, (path, params) in paths.items():
        assert _tag(s, path, **params) == tags[name]  # same body, same tag
        cached = s.client.get(path, params=params, headers={"If-None-Match": tags[name]})
        assert cached.status_code == 304, (name, cached.text)
        assert cached.content == b""
        assert cached.headers["etag"] == tags[name]
        listed = s.client.get(path, params=params, headers={"If-None-Match": f'"other", {tags[name]}'})
        assert listed.status_code == 304
        stale = s.client.get(path, params=params, headers={"If-None-Match": '"not-this-one"'})
        assert stale.status_code == 200 and stale.json()
    # Another name for the same device: the same body, so the same tag.
    assert _tag(s, f"/certificates/{s.rows[device]['imei']}") == tags["view"]
    assert _tag(s, f"/certificates/{s.devices[1]}") != tags["view"]

    Lifecycle(contracts=s.runtime.contracts, sender=sender(s.runtime, keys.DevRole.MANUFACTURER)).end_of_life(
        device, Stage.DECOMMISSIONED, b"\x07" * 32
    )
    # Not indexed yet: the database, and so the body and its tag, are what they were.
    assert s.client.get(paths["view"][0], headers={"If-None-Match": tags["view"]}).status_code == 304
    s.index()

    for name in ("view", "list"):
        path, params = paths[name]
        response = s.client.get(path, params=params, headers={"If-None-Match": tags[name]})
        assert response.status_code == 200, name
        assert response.headers["etag"] != tags[name]
    assert s.view(device)["on_chain"]["stage"] == "decommissioned"
    # The standing does not depend on the stage: the verification body, and its tag, stay.
    assert s.client.get(paths["verify"][0], headers={"If-None-Match": tags["verify"]}).status_code == 304
    new = _tag(s, paths["view"][0])
    assert s.client.get(paths["view"][0], headers={"If-None-Match": new}).status_code == 304
