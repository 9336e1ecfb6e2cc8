//! The `chgate` binary and topology file a gateway runs from when it runs as its own user.
//!
//! Started by root, the gateways run as the system user `chgate`
//! ([`crate::account::GATEWAY_USER`]), which often cannot reach the caller's checkout or build
//! directory (a clone under `/root` is 0700; `CARGO_TARGET_DIR` may be anywhere). So before each
//! start the binary and the topology are staged in `<state_dir>/bin/`, root's and world-readable:
//! - the binary is hard-linked there (copied when the build directory is on another file system),
//!   and linked again whenever the build replaced it, so a rebuilt `chgate` is what starts;
//! - the topology is written there with `state_dir` made absolute (the original resolves it
//!   against its own directory). A topology holds no secret (secrets are references), so the copy
//!   may be read by everyone.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::plan::GatewayCommand;
use crate::StackError;

/// Where the gateways find the binary and the topology once staged.
pub fn staged(state_dir: &Path) -> GatewayCommand {
    let bin = state_dir.join("bin");
    GatewayCommand {
        exe: bin.join("chgate"),
        topology: bin.join("topology.toml"),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StackError + '_ {
    move |source| StackError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Stages `source` (the caller's binary and topology) at [`staged`]`(state_dir)`.
///
/// # Errors
/// [`StackError::Io`] naming the file that could not be read or written;
/// [`StackError::Topology`] when the topology cannot be parsed.
pub fn stage(source: &GatewayCommand, state_dir: &Path) -> Result<(), StackError> {
    let to = staged(state_dir);
    let bin = state_dir.join("bin");
    fs::create_dir_all(&bin).map_err(io(&bin))?;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).map_err(io(&bin))?;
    stage_binary(&source.exe, &to.exe)?;
    stage_topology(&source.topology, &to.topology, state_dir)
}

/// Links (or copies) `from` to `to` unless `to` already is that file, or an identical copy.
fn stage_binary(from: &Path, to: &Path) -> Result<(), StackError> {
    let src = fs::metadata(from).map_err(io(from))?;
    if let Ok(dst) = fs::metadata(to) {
        let same_file = dst.dev() == src.dev() && dst.ino() == src.ino();
        let same_copy = dst.len() == src.len() && dst.mtime() == src.mtime();
        if same_file || same_copy {
            return Ok(());
        }
    }
    let tmp = to.with_extension("new");
    let _ = fs::remove_file(&tmp);
    if fs::hard_link(from, &tmp).is_err() {
        fs::copy(from, &tmp).map_err(io(&tmp))?;
        let copied = fs::File::options()
            .write(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        let mtime = src.modified().map_err(io(from))?;
        copied.set_modified(mtime).map_err(io(&tmp))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).map_err(io(&tmp))?;
    }
    fs::rename(&tmp, to).map_err(io(to))
}

/// Writes `from` to `to` with `state_dir` absolute, when that changes `to`.
fn stage_topology(from: &Path, to: &Path, state_dir: &Path) -> Result<(), StackError> {
    let text = fs::read_to_string(from).map_err(io(from))?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| StackError::Start {
            service: "gateway".into(),
            reason: format!("cannot parse the topology {}: {e}", from.display()),
        })?;
    table.insert(
        "state_dir".into(),
        toml::Value::String(state_dir.display().to_string()),
    );
    let staged = format!(
        "# Written by `chgate local` from {} for the gateways (state_dir made absolute).\n\
         # Edit that file, not this one.\n{table}",
        from.display()
    );
    if fs::read_to_string(to).is_ok_and(|old| old == staged) {
        return Ok(());
    }
    let tmp = to.with_extension("new");
    fs::write(&tmp, staged).map_err(io(&tmp))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(io(&tmp))?;
    fs::rename(&tmp, to).map_err(io(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_is_linked_again_after_a_rebuild_and_the_topology_gets_an_absolute_state_dir() {
        let tmp = tempfile::tempdir().expect("tmp");
        let build = tmp.path().join("build");
        let checkout = tmp.path().join("checkout");
        let state = tmp.path().join("state");
        for d in [&build, &checkout, &state] {
            fs::create_dir_all(d).expect("mkdir");
        }
        let exe = build.join("chgate");
        fs::write(&exe, b"#!/bin/sh\necho v1\n").expect("write");
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).expect("chmod");
        let topo = checkout.join("chgate.toml");
        fs::write(
            &topo,
            "# a comment\nstate_dir = \".chgate\"\n\n[cluster]\nshards = 2\n",
        )
        .expect("write");
        let source = GatewayCommand {
            exe: exe.clone(),
            topology: topo.clone(),
        };

        stage(&source, &state).expect("stages");
        let to = staged(&state);
        assert_eq!(fs::read(&to.exe).expect("read"), b"#!/bin/sh\necho v1\n");
        let mode = fs::metadata(&to.exe).expect("meta").permissions().mode();
        assert_eq!(mode & 0o755, 0o755, "executable by everyone");
        let t: toml::Table = fs::read_to_string(&to.topology)
            .expect("read")
            .parse()
            .expect("staged topology parses");
        assert_eq!(
            t["state_dir"].as_str(),
            Some(state.display().to_string().as_str())
        );
        assert_eq!(t["cluster"]["shards"].as_integer(), Some(2));

        // A rebuild replaces the binary (a new file at the same path): staged again.
        fs::remove_file(&exe).expect("rm");
        fs::write(&exe, b"#!/bin/sh\necho v2, longer\n").expect("write");
        stage(&source, &state).expect("stages again");
        assert_eq!(
            fs::read(&to.exe).expect("read"),
            b"#!/bin/sh\necho v2, longer\n"
        );
        // Unchanged: left alone (same inode).
        let ino = fs::metadata(&to.exe).expect("meta").ino();
        stage(&source, &state).expect("no-op");
        assert_eq!(fs::metadata(&to.exe).expect("meta").ino(), ino);
    }

    #[test]
    fn a_topology_that_does_not_parse_is_named() {
        let tmp = tempfile::tempdir().expect("tmp");
        let exe = tmp.path().join("chgate");
        fs::write(&exe, b"x").expect("write");
        let topo = tmp.path().join("bad.toml");
        fs::write(&topo, "state_dir = \n").expect("write");
        let e = stage(
            &GatewayCommand {
                exe,
                topology: topo,
            },
            &tmp.path().join("state"),
        )
        .expect_err("refused");
        assert!(e.to_string().contains("bad.toml"), "{e}");
    }
}
