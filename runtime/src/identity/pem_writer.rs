//! Writing X.509 material as the three PEM files a `files` identity reads: how a
//! development CA's SVIDs reach a server or a command in another process (the
//! quickstart's `serve` mode, the `ephemos` command's tests).

use std::io::Write;
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
    /// identity reloads when they change) never sees half a file. The temporary file is
    /// always made anew (a symlink or file already at its path is removed, never
    /// followed), and the key's is readable by its owner only from its creation on unix.
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

/// Who may read a file being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readers {
    /// Anyone the umask allows (certificates).
    Anyone,
    /// Its owner only (a private key): mode 0600 from the moment it exists.
    Owner,
}

fn write(dir: &Path, name: &str, tag: &str, ders: &[Vec<u8>]) -> std::io::Result<PathBuf> {
    let text: String = ders
        .iter()
        .map(|der| pem::encode(&pem::Pem::new(tag, der.clone())))
        .collect();
    let readers = if tag == "PRIVATE KEY" {
        Readers::Owner
    } else {
        Readers::Anyone
    };
    let path = dir.join(name);
    let temporary = dir.join(format!(".{name}.tmp"));
    let mut file = create_temporary(&temporary, readers)?;
    file.write_all(text.as_bytes())
        .map_err(|e| in_context(&temporary, "cannot write", e))?;
    drop(file);
    std::fs::rename(&temporary, &path).map_err(|e| in_context(&path, "cannot rename into", e))?;
    Ok(path)
}

/// Creates `path` as a new file, never opening what is already there: a symlink planted
/// in a shared directory is not followed and an existing file is not reused with its
/// permissions. A leftover of an interrupted write (or a planted entry) is removed, not
/// followed, and the file made anew; if something appears again in between, another
/// process is writing there and the write fails, naming the path.
fn create_temporary(path: &Path, readers: Readers) -> std::io::Result<std::fs::File> {
    match create_new(path, readers) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)
                .map_err(|e| in_context(path, "cannot remove the leftover temporary file", e))?;
            create_new(path, readers).map_err(|e| {
                in_context(
                    path,
                    "cannot create (another process is writing the same files in this directory?)",
                    e,
                )
            })
        }
        result => result.map_err(|e| in_context(path, "cannot create", e)),
    }
}

fn create_new(path: &Path, readers: Readers) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if readers == Readers::Owner {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = readers;
    options.open(path)
}

fn in_context(path: &Path, what: &str, error: std::io::Error) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{what} {}: {error}", path.display()))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use ephemos_config::value::{SpiffeId, TrustDomain};

    use super::*;
    use crate::identity::DevCa;

    fn material() -> X509Material {
        let domain = TrustDomain::parse("example.org").unwrap();
        let id = SpiffeId::parse("spiffe://example.org/pem").unwrap();
        DevCa::new(domain)
            .unwrap()
            .mint(&id, std::time::Duration::from_secs(3600))
            .unwrap()
    }

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_symlink_planted_at_the_temporary_path_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("victim");
        std::fs::write(&target, "untouched").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        for name in [".svid.pem.tmp", ".svid.key.tmp", ".svid-bundle.pem.tmp"] {
            std::os::unix::fs::symlink(&target, dir.path().join(name)).unwrap();
        }
        let paths = material().write_pem_files(dir.path(), "svid").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert_eq!(mode(&target), 0o644);
        let key = std::fs::symlink_metadata(&paths.key).unwrap();
        assert!(key.file_type().is_file(), "{:?}", key.file_type());
        assert_eq!(mode(&paths.key), 0o600);
        assert!(
            std::fs::read_to_string(&paths.key)
                .unwrap()
                .contains("PRIVATE KEY")
        );
    }

    #[test]
    fn a_leftover_temporary_file_is_replaced_not_reused_with_its_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let leftover = dir.path().join(".svid.key.tmp");
        std::fs::write(&leftover, "stale").unwrap();
        std::fs::set_permissions(&leftover, std::fs::Permissions::from_mode(0o666)).unwrap();
        let paths = material().write_pem_files(dir.path(), "svid").unwrap();
        assert_eq!(mode(&paths.key), 0o600);
        assert!(!leftover.exists());
    }

    #[test]
    fn a_private_keys_file_is_owner_only_from_its_creation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let file = create_temporary(&path, Readers::Owner).unwrap();
        // Nothing written yet: the mode is the creation's, whatever the umask allows.
        assert_eq!(file.metadata().unwrap().len(), 0);
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_directory_at_the_temporary_path_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".svid.pem.tmp")).unwrap();
        let error = material().write_pem_files(dir.path(), "svid").unwrap_err();
        assert!(error.to_string().contains(".svid.pem.tmp"), "{error}");
    }
}
