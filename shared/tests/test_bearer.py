"""The one check of an internal or admin bearer secret that auth, status and the notifier share."""

from shared.http import bearer_matches


def test_only_the_bearer_scheme_with_an_accepted_secret_matches():
    assert bearer_matches("Bearer s3cret", "s3cret")
    assert bearer_matches("bearer s3cret", "other", "s3cret")  # any of several accepted secrets
    assert not bearer_matches("Bearer s3cre", "s3cret")  # a prefix is not the secret
    assert not bearer_matches("Basic s3cret", "s3cret")
    assert not bearer_matches(None, "s3cret")
    assert not bearer_matches("Bearer s3cret")  # nothing accepted: nothing matches
