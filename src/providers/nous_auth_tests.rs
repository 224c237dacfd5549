//! Unit tests of the Hermes login helpers: JWT expiry, trusted hosts, form encoding.

use super::*;

#[test]
fn jwt_exp_is_read_from_the_payload() {
    // {"alg":"none"} . {"sub":"x","exp":1795000000} . sig
    let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4IiwiZXhwIjoxNzk1MDAwMDAwfQ.c2ln";
    assert_eq!(jwt_exp(token), Some(1_795_000_000));
    assert_eq!(jwt_exp("opaque-token"), None);
    assert_eq!(jwt_exp("a.b.c.d"), None);
    assert_eq!(jwt_exp("a.!!!.c"), None);
}

#[test]
fn only_nousresearch_https_hosts_are_trusted() {
    assert!(trusted_nous_host(
        "https://inference-api.nousresearch.com/v1"
    ));
    assert!(trusted_nous_host("https://x.nousresearch.com:443/v1"));
    assert!(!trusted_nous_host(
        "http://inference-api.nousresearch.com/v1"
    ));
    assert!(!trusted_nous_host("https://nousresearch.com.evil.test/v1"));
    assert!(!trusted_nous_host("https://evil.test/x.nousresearch.com"));
    assert!(!trusted_nous_host("https://a.nousresearch.com@evil.test/"));
}

#[test]
fn form_encoding_escapes_reserved_characters() {
    assert_eq!(form_encode("hermes-cli"), "hermes-cli");
    assert_eq!(form_encode("a b&c=d"), "a%20b%26c%3Dd");
}
