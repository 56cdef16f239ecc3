//! The server's session token: made once per lab and kept in
//! `.labmate/serve-token` (mode 0600), so that a restarted server keeps the
//! URL its user opened; or read from the file `--token-file` names.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use labmate::Error;
use labmate::lab::Lab;

/// The file a lab keeps its token in.
pub fn default_path(lab: &Lab) -> PathBuf {
    lab.root().join("serve-token")
}

/// The token in `path`, made there first when the file does not exist.
pub fn load_or_create(path: &Path) -> labmate::Result<String> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_string();
            if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::invalid(
                    "token file",
                    format!(
                        "{} does not hold a token (16 or more printable characters, no spaces); delete it to make a new one",
                        path.display()
                    ),
                ));
            }
            labmate::remote::check_private(path)?;
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn create(path: &Path) -> labmate::Result<String> {
    let mut bytes = [0u8; 24];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::environment("token", format!("cannot read /dev/urandom for a token: {e}")))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // create_new: two servers starting at once do not overwrite each
    // other's token; the second one reads the first one's.
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut f) => {
            f.write_all(format!("{token}\n").as_bytes()).map_err(|e| Error::write(path, e))?;
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(path),
        Err(e) => Err(Error::write(path, e)),
    }
}
