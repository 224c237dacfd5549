//! A throwaway CA and a certificate for 127.0.0.1 and localhost signed by it, for
//! the HTTPS mock providers, the TLS redis-server and direct HTTPS.
#![allow(dead_code)]

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct TestCerts {
    /// The CA certificate, PEM: what a client is told to trust.
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    pub leaf_pem: String,
    pub leaf_key_pem: String,
    pub leaf_der: CertificateDer<'static>,
    leaf_key_der: Vec<u8>,
}

impl TestCerts {
    pub fn leaf_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::try_from(self.leaf_key_der.clone()).unwrap()
    }
}

pub fn localhost() -> TestCerts {
    localhost_with_ca("agent-mesh test CA")
}

/// The same, from a CA of this common name (two CAs of one name could not be told
/// apart by a client, which finds a certificate's issuer by name).
pub fn localhost_with_ca(ca_name: &str) -> TestCerts {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca_issuer = rcgen::Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca_issuer).unwrap();
    TestCerts {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
        leaf_der: leaf.der().clone(),
        leaf_key_der: leaf_key.serialize_der(),
    }
}
