from __future__ import annotations

import trackwire


def test_the_public_api_changes_only_on_purpose() -> None:
    assert sorted(trackwire.__all__) == sorted(
        ["Context", "Event", "Fail", "Ref", "Retry", "Skip", "TrackwireError", "__version__", "on"]
    )
    for name in trackwire.__all__:
        assert hasattr(trackwire, name)
