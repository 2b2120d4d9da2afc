//! A development CA and node certificates, generated in memory with rcgen (feature
//! `dev-certs`, on by default), so a demo cluster or a test runs with no manual steps.
//!
//! Not for production: the CA key lives in the process that generated it, certificates
//! are valid for centuries and nothing can revoke them. Production clusters issue
//! certificates with their own CA and load them with [`crate::TlsConfig::from_pem_files`];
//! [`DevCa::write_node_files`] shows the files such a setup needs.
//!
//! ```
//! let ca = raft_quic::dev_certs::DevCa::generate().unwrap();
//! let tls = ca.tls_config(1).unwrap();
//! assert_eq!(tls.node_id(), Ok(1));
//! ```

use crate::tls::{node_name, TlsConfig, TlsError};
use raft_core::NodeId;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};

/// Why development certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevCertError {
    /// rcgen failed to generate a key or a certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing a PEM file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The generated material was refused (a bug).
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A node's certificate and private key, in PEM and DER.
#[derive(Debug)]
pub struct NodeCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The private key (PKCS#8), DER.
    pub key_der: PrivatePkcs8KeyDer<'static>,
}

/// A self-signed development CA that issues node certificates.
pub struct DevCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

impl DevCa {
    /// A new CA with a fresh ECDSA P-256 key.
    pub fn generate() -> Result<Self, DevCertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "raft-quic development CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok(DevCa { cert, key })
    }

    /// The CA certificate, PEM (what every node trusts).
    pub fn ca_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A certificate for node `id`: subject alternative name `node-<id>.raft`, usable
    /// as server and client certificate.
    pub fn node_cert(&self, id: NodeId) -> Result<NodeCert, DevCertError> {
        self.cert_for_names(vec![node_name(id)])
    }

    /// A certificate with the given DNS names as subject alternative names (for tests of
    /// certificates naming no node, several nodes or another node).
    pub fn cert_for_names(&self, names: Vec<String>) -> Result<NodeCert, DevCertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.clone())?;
        params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(NodeCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// The TLS configuration of node `id`: trusts this CA, presents a fresh certificate
    /// for `node-<id>.raft`.
    pub fn tls_config(&self, id: NodeId) -> Result<TlsConfig, DevCertError> {
        self.tls_config_with(self.node_cert(id)?)
    }

    /// The TLS configuration presenting `cert` and trusting this CA.
    pub fn tls_config_with(&self, cert: NodeCert) -> Result<TlsConfig, DevCertError> {
        Ok(TlsConfig::new(vec![self.ca_der()], vec![cert.cert_der], PrivateKeyDer::Pkcs8(cert.key_der))?)
    }

    /// Writes `ca.pem`, `node-<id>.pem` and `node-<id>.key` into `dir` (created if missing)
    /// and returns their paths, in the order [`TlsConfig::from_pem_files`] takes them.
    pub fn write_node_files(&self, dir: &Path, id: NodeId) -> Result<(PathBuf, PathBuf, PathBuf), DevCertError> {
        let write = |path: PathBuf, text: &str| {
            std::fs::write(&path, text).map(|()| path.clone()).map_err(|source| DevCertError::Write { path, source })
        };
        std::fs::create_dir_all(dir).map_err(|source| DevCertError::Write { path: dir.to_path_buf(), source })?;
        let cert = self.node_cert(id)?;
        let ca = write(dir.join("ca.pem"), &self.ca_pem())?;
        let chain = write(dir.join(format!("node-{id}.pem")), &cert.cert_pem)?;
        let key = write(dir.join(format!("node-{id}.key")), &cert.key_pem)?;
        Ok((ca, chain, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{node_id_of, IdentityError};

    #[test]
    fn node_certificates_name_their_node() {
        let ca = DevCa::generate().unwrap();
        assert_eq!(node_id_of(&ca.node_cert(5).unwrap().cert_der), Ok(5));
        let none = ca.cert_for_names(vec!["example.org".into()]).unwrap();
        assert_eq!(node_id_of(&none.cert_der), Err(IdentityError::NoNodeName));
        let two = ca.cert_for_names(vec![node_name(2), node_name(3)]).unwrap();
        assert_eq!(node_id_of(&two.cert_der), Err(IdentityError::SeveralNodes(vec![2, 3])));
    }

    #[test]
    fn pem_files_load_back() {
        let ca = DevCa::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (c, n, k) = ca.write_node_files(dir.path(), 4).unwrap();
        let tls = TlsConfig::from_pem_files(&c, &n, &k).unwrap();
        assert_eq!(tls.node_id(), Ok(4));
        let missing = TlsConfig::from_pem_files(dir.path().join("nope.pem"), &n, &k).unwrap_err();
        assert!(missing.to_string().contains("nope.pem"), "{missing}");
        let swapped = TlsConfig::from_pem_files(&c, &k, &k).unwrap_err();
        assert!(matches!(swapped, TlsError::Pem { .. }), "{swapped}");
    }
}
