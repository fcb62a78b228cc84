//! The seccomp filter: `socket(2)` only for the address families the network setting allows,
//! and no io_uring (its socket and connect operations would go around this filter).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

use super::SandboxError;

/// x32 system calls are the x86_64 numbers with this bit set; refused alike where x32 exists.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

/// A filter refusing (EACCES) `socket` for every family not in `allowed`, and io_uring.
pub(crate) fn filter(allowed: &[libc::c_int]) -> Result<BpfProgram, SandboxError> {
    let err = |e: &dyn std::fmt::Display| SandboxError::Seccomp(e.to_string());
    let arch: TargetArch = std::env::consts::ARCH.try_into().map_err(|e| err(&e))?;
    // One rule whose conditions must all hold: the family is none of the allowed ones. No
    // conditions at all: every socket() is refused.
    let conditions = allowed
        .iter()
        .map(|f| SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, *f as u64))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(&e))?;
    let socket_rules = if conditions.is_empty() {
        vec![]
    } else {
        vec![SeccompRule::new(conditions).map_err(|e| err(&e))?]
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut refuse = |nr: i64, r: Vec<SeccompRule>| {
        #[cfg(target_arch = "x86_64")]
        rules.insert(nr | X32_SYSCALL_BIT, r.clone());
        rules.insert(nr, r);
    };
    refuse(libc::SYS_socket, socket_rules);
    refuse(libc::SYS_io_uring_setup, vec![]);
    refuse(libc::SYS_io_uring_enter, vec![]);
    refuse(libc::SYS_io_uring_register, vec![]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EACCES as u32),
        arch,
    )
    .map_err(|e| err(&e))?;
    filter.try_into().map_err(|e: seccompiler::BackendError| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_for_every_setting() {
        for allowed in [&[][..], &[libc::AF_UNIX][..], &[libc::AF_INET, libc::AF_INET6][..]] {
            let prog = filter(allowed).unwrap();
            assert!(!prog.is_empty() && prog.len() < 4096, "{}", prog.len());
        }
    }
}
