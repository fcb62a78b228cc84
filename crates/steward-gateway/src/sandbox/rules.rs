//! The Landlock ruleset, built in the parent (the child only enforces it).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope,
};

use super::SandboxError;
use super::facility::{Facility, Kernel};

/// What the ruleset handles (denies unless a rule grants it) and grants.
#[derive(Debug, Clone, Default)]
pub(crate) struct RulesetPlan {
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
    pub devices: Vec<PathBuf>,
    /// TCP ports connect is allowed to; `None`: TCP is not handled by Landlock.
    pub tcp_connect: Option<Vec<u16>>,
    /// UDP ports datagrams may go to (ABI 10); `None`: UDP is not handled.
    pub udp_send: Option<Vec<u16>>,
    pub scope: bool,
}

/// The access rights this kernel's Landlock handles for files, as far as we use them.
pub(crate) fn handled_fs(kernel: &Kernel) -> BitFlags<AccessFs> {
    // The ABI comes from the kernel probe rather than the crate's own best-effort so that what
    // is enforced is known, and reported, before the fork. Capped at the newest ABI this code
    // knows; an unknown future right is never requested.
    let abi = ABI::from(kernel.landlock_abi.min(10));
    let mut access = AccessFs::from_all(abi);
    for (facility, right) in [
        (Facility::LandlockTruncate, AccessFs::Truncate),
        (Facility::LandlockIoctl, AccessFs::IoctlDev),
        (Facility::LandlockUnix, AccessFs::ResolveUnix),
    ] {
        if !kernel.has(facility) {
            access.remove(right);
        }
    }
    access
}

/// Read (and execute): files, directories.
pub(crate) fn read_access(handled: BitFlags<AccessFs>) -> BitFlags<AccessFs> {
    (AccessFs::Execute | AccessFs::ReadFile | AccessFs::ReadDir) & handled
}

/// Read and write, not execute; no device nodes (root could otherwise mknod a disk).
fn write_access(handled: BitFlags<AccessFs>) -> BitFlags<AccessFs> {
    (AccessFs::ReadFile
        | AccessFs::ReadDir
        | AccessFs::WriteFile
        | AccessFs::RemoveDir
        | AccessFs::RemoveFile
        | AccessFs::MakeDir
        | AccessFs::MakeReg
        | AccessFs::MakeSock
        | AccessFs::MakeFifo
        | AccessFs::MakeSym
        | AccessFs::Refer
        | AccessFs::Truncate
        | AccessFs::ResolveUnix)
        & handled
}

fn device_access(handled: BitFlags<AccessFs>) -> BitFlags<AccessFs> {
    (AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev) & handled
}

/// Builds the ruleset; returns its fd (O_CLOEXEC) for the child to enforce.
pub(crate) fn build(plan: &RulesetPlan, kernel: &Kernel) -> Result<OwnedFd, SandboxError> {
    let err = |e: &dyn std::fmt::Display| SandboxError::Landlock(e.to_string());
    let handled = handled_fs(kernel);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(handled)
        .map_err(|e| err(&e))?;
    if plan.tcp_connect.is_some() {
        ruleset = ruleset
            .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
            .map_err(|e| err(&e))?;
    }
    if plan.udp_send.is_some() {
        ruleset = ruleset
            .handle_access(AccessNet::BindUdp | AccessNet::ConnectSendUdp)
            .map_err(|e| err(&e))?;
    }
    if plan.scope {
        ruleset = ruleset.scope(Scope::from_all(ABI::V6)).map_err(|e| err(&e))?;
    }
    let mut created = ruleset.create().map_err(|e| err(&e))?;
    for (paths, access) in [
        (&plan.read, read_access(handled)),
        (&plan.write, write_access(handled)),
        (&plan.devices, device_access(handled)),
    ] {
        for p in paths {
            created = add_path(created, p, access, handled)?;
        }
    }
    for port in plan.tcp_connect.iter().flatten() {
        created = created
            .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
            .map_err(|e| err(&e))?;
    }
    if let Some(ports) = &plan.udp_send {
        // A UDP socket binds an ephemeral port (port 0) before its first datagram.
        created = created
            .add_rule(NetPort::new(0, AccessNet::BindUdp))
            .map_err(|e| err(&e))?;
        for port in ports {
            created = created
                .add_rule(NetPort::new(*port, AccessNet::ConnectSendUdp))
                .map_err(|e| err(&e))?;
        }
    }
    let fd: Option<OwnedFd> = created.into();
    fd.ok_or_else(|| SandboxError::Landlock("the kernel gave no ruleset".into()))
}

fn add_path(
    created: RulesetCreated,
    path: &Path,
    access: BitFlags<AccessFs>,
    handled: BitFlags<AccessFs>,
) -> Result<RulesetCreated, SandboxError> {
    let fd = PathFd::new(path).map_err(|e| SandboxError::Path {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
    // Directory-only rights on a file are an error for the kernel.
    let access = if is_dir {
        access
    } else {
        access & AccessFs::from_file(ABI::V10) & handled
    };
    if access.is_empty() {
        return Ok(created);
    }
    created
        .add_rule(PathBeneath::new(fd, access))
        .map_err(|e| SandboxError::Landlock(format!("{}: {e}", path.display())))
}
