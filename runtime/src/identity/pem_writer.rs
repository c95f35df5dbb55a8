//! Writing X.509 material as the three PEM files a `files` identity reads: how a
//! development CA's SVIDs reach a server or a command in another process (the
//! quickstart's `serve` mode, the `ephemos` command's tests).

use std::path::{Path, PathBuf};

use super::X509Material;

/// Where [`X509Material::write_pem_files`] wrote the files, as
/// `identity = { source = "files", cert, key, bundle }` names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemPaths {
    /// The certificate chain, leaf first (`CERTIFICATE` blocks).
    pub cert: PathBuf,
    /// The leaf's PKCS#8 key (`PRIVATE KEY`), readable by its owner only on unix.
    pub key: PathBuf,
    /// The CA certificates of the SVID's own trust domain.
    pub bundle: PathBuf,
}

impl X509Material {
    /// Writes `STEM.pem`, `STEM.key` and `STEM-bundle.pem` in `dir`. Each file is
    /// written beside its place and renamed into it, so a reader (the `files`
    /// identity reloads when they change) never sees half a file.
    pub fn write_pem_files(&self, dir: &Path, stem: &str) -> std::io::Result<PemPaths> {
        let bundle: Vec<Vec<u8>> = self
            .bundles
            .iter()
            .find(|(td, _)| *td == self.svid.spiffe_id.trust_domain())
            .map(|(_, certs)| certs.clone())
            .unwrap_or_default();
        Ok(PemPaths {
            cert: write(dir, &format!("{stem}.pem"), "CERTIFICATE", &self.svid.chain)?,
            key: write(
                dir,
                &format!("{stem}.key"),
                "PRIVATE KEY",
                std::slice::from_ref(&self.svid.private_key),
            )?,
            bundle: write(dir, &format!("{stem}-bundle.pem"), "CERTIFICATE", &bundle)?,
        })
    }
}

fn write(dir: &Path, name: &str, tag: &str, ders: &[Vec<u8>]) -> std::io::Result<PathBuf> {
    let text: String = ders
        .iter()
        .map(|der| pem::encode(&pem::Pem::new(tag, der.clone())))
        .collect();
    let path = dir.join(name);
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, text)?;
    #[cfg(unix)]
    if tag == "PRIVATE KEY" {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}
