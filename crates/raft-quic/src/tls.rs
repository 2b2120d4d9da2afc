//! Mutual TLS with a cluster CA, and the node identity a certificate carries.
//!
//! Every node presents a certificate signed by the cluster CA whose subject alternative
//! names include the DNS name `node-<id>.raft` ([`node_name`]). A dialling node checks the
//! server's certificate against the CA and against the name of the node it dials; an
//! accepting node requires a client certificate signed by the CA and binds the
//! connection to the one node id the certificate names.

use crate::metrics::Counters;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use raft_core::NodeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;

/// The ALPN protocol name both sides require.
pub const ALPN: &[u8] = b"raft-quic/1";

/// The DNS name a certificate of node `id` carries: `node-<id>.raft`.
pub fn node_name(id: NodeId) -> String {
    format!("node-{id}.raft")
}

/// The node id a DNS name of the form `node-<id>.raft` names (`id` in canonical decimal,
/// not 0), or `None`.
pub fn parse_node_name(name: &str) -> Option<NodeId> {
    let digits = name.strip_prefix("node-")?.strip_suffix(".raft")?;
    let id: NodeId = digits.parse().ok()?;
    (id != 0 && id.to_string() == digits).then_some(id)
}

/// Why a certificate does not identify exactly one node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The peer presented no certificate.
    #[error("the peer presented no certificate")]
    NoCertificate,
    /// The certificate does not parse.
    #[error("unparsable certificate: {0}")]
    Unparsable(String),
    /// No subject alternative name of the form `node-<id>.raft`.
    #[error("the certificate names no node (expected a DNS name node-<id>.raft)")]
    NoNodeName,
    /// Names of several nodes: which one the peer is would be ambiguous.
    #[error("the certificate names several nodes: {0:?}")]
    SeveralNodes(Vec<NodeId>),
}

/// The one node id that `cert` names (see [`node_name`]). Other DNS names are ignored.
pub fn node_id_of(cert: &CertificateDer<'_>) -> Result<NodeId, IdentityError> {
    let parsed = webpki::EndEntityCert::try_from(cert).map_err(|e| IdentityError::Unparsable(e.to_string()))?;
    let mut ids: Vec<NodeId> = parsed.valid_dns_names().filter_map(parse_node_name).collect();
    ids.sort_unstable();
    ids.dedup();
    match ids[..] {
        [] => Err(IdentityError::NoNodeName),
        [id] => {
            // The name was read with a helper meant for display; confirm it with the
            // verification webpki offers for names.
            let name = ServerName::try_from(node_name(id)).map_err(|e| IdentityError::Unparsable(e.to_string()))?;
            parsed.verify_is_valid_for_subject_name(&name).map_err(|e| IdentityError::Unparsable(e.to_string()))?;
            Ok(id)
        }
        _ => Err(IdentityError::SeveralNodes(ids)),
    }
}

/// Why TLS material could not be loaded or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or holds no item of the kind expected.
    #[error("{what}: {message}")]
    Pem {
        /// Which input (CA, certificate chain, key, with the path for files).
        what: String,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the material (for instance a key that does not match the
    /// certificate, or a CA certificate it cannot use as a trust anchor).
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// The CA certificates give no usable trust anchor.
    #[error("cannot build a certificate verifier from the CA: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The node's certificate does not name exactly the node id it is used for.
    #[error("the certificate does not identify node {expected}: {reason}")]
    Identity {
        /// The node id the transport is bound for.
        expected: NodeId,
        /// What the certificate names instead.
        reason: String,
    },
    /// The rustls configuration has no cipher suite QUIC can use for its initial packets.
    #[error("no TLS 1.3 cipher suite usable by QUIC")]
    NoQuicCipherSuite,
}

/// A node's TLS material: the cluster CA certificates it trusts, its certificate chain
/// (its own certificate first) and its private key.
///
/// Build it from PEM files ([`TlsConfig::from_pem_files`]) in production, or from the
/// development CA of `raft_quic::dev_certs` (feature `dev-certs`) in demos and tests.
#[derive(Debug)]
pub struct TlsConfig {
    ca: Vec<CertificateDer<'static>>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for TlsConfig {
    fn clone(&self) -> Self {
        TlsConfig { ca: self.ca.clone(), chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

impl TlsConfig {
    /// Material given as DER: `ca` (the trust anchors: the cluster CA), `chain` (this
    /// node's certificate first, then intermediates) and `key`.
    pub fn new(
        ca: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        if ca.is_empty() {
            return Err(TlsError::Pem { what: "CA".into(), message: "no CA certificate given".into() });
        }
        if chain.is_empty() {
            return Err(TlsError::Pem { what: "certificate chain".into(), message: "no certificate given".into() });
        }
        Ok(TlsConfig { ca, chain, key })
    }

    /// Material given as PEM text: the CA certificate(s), this node's certificate chain,
    /// and its private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(ca: &str, chain: &str, key: &str) -> Result<Self, TlsError> {
        let certs = |pem: &str, what: &str| -> Result<Vec<CertificateDer<'static>>, TlsError> {
            CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::Pem { what: what.into(), message: e.to_string() })
        };
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
            .map_err(|e| TlsError::Pem { what: "private key".into(), message: e.to_string() })?;
        TlsConfig::new(certs(ca, "CA")?, certs(chain, "certificate chain")?, key)
    }

    /// Material read from PEM files: the CA certificate(s), this node's certificate chain,
    /// and its private key.
    pub fn from_pem_files(
        ca: impl AsRef<Path>,
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|e| TlsError::Pem { what: path.display().to_string(), message: e.to_string() })
        };
        let (ca, chain, key) = (ca.as_ref(), chain.as_ref(), key.as_ref());
        TlsConfig::from_pem(&read(ca)?, &read(chain)?, &read(key)?).map_err(|e| match e {
            TlsError::Pem { what, message } => {
                let path = match what.as_str() {
                    "CA" => ca,
                    "private key" => key,
                    _ => chain,
                };
                TlsError::Pem { what: format!("{what} ({})", path.display()), message }
            }
            other => other,
        })
    }

    /// The node id this configuration's certificate names.
    pub fn node_id(&self) -> Result<NodeId, IdentityError> {
        node_id_of(self.chain.first().ok_or(IdentityError::NoCertificate)?)
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, TlsError> {
        let mut roots = RootCertStore::empty();
        for ca in &self.ca {
            roots.add(ca.clone())?;
        }
        Ok(Arc::new(roots))
    }

    /// The server side: requires a client certificate signed by the CA.
    pub(crate) fn server_config(&self, counters: Arc<Counters>) -> Result<QuicServerConfig, TlsError> {
        let provider = provider();
        let inner = WebPkiClientVerifier::builder_with_provider(self.roots()?, provider.clone()).build()?;
        let verifier = Arc::new(CountingClientVerifier { inner, counters });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        QuicServerConfig::try_from(config).map_err(|_| TlsError::NoQuicCipherSuite)
    }

    /// The client side: verifies the server against the CA and the name it is dialled by,
    /// and presents this node's certificate.
    pub(crate) fn client_config(&self, counters: Arc<Counters>) -> Result<QuicClientConfig, TlsError> {
        let provider = provider();
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(self.roots()?, provider.clone()).build()?;
        let verifier = Arc::new(CountingServerVerifier { inner, counters });
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        QuicClientConfig::try_from(config).map_err(|_| TlsError::NoQuicCipherSuite)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA check for client certificates (rustls's webpki verifier), counting refusals.
#[derive(Debug)]
struct CountingClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    counters: Arc<Counters>,
}

impl ClientCertVerifier for CountingClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let result = self.inner.verify_client_cert(end_entity, intermediates, now);
        if let Err(e) = &result {
            Counters::add(&self.counters.client_certs_refused);
            tracing::warn!(target: "raft::quic", "client certificate refused: {e}");
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// The CA and name check for server certificates (rustls's webpki verifier), counting
/// refusals.
#[derive(Debug)]
struct CountingServerVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    counters: Arc<Counters>,
}

impl ServerCertVerifier for CountingServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        if let Err(e) = &result {
            Counters::add(&self.counters.server_certs_refused);
            tracing::warn!(target: "raft::quic", server = ?server_name, "server certificate refused: {e}");
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_round_trip_and_refuse_lookalikes() {
        assert_eq!(node_name(7), "node-7.raft");
        assert_eq!(parse_node_name("node-7.raft"), Some(7));
        assert_eq!(parse_node_name(&node_name(u64::MAX)), Some(u64::MAX));
        for bad in ["node-0.raft", "node-07.raft", "node-+7.raft", "node-.raft", "node-7.raft.evil", "xnode-7.raft"] {
            assert_eq!(parse_node_name(bad), None, "{bad}");
        }
    }
}
