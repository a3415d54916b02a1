//! Randomness from the operating system, and the one error for its absence.
//!
//! Room secrets, identity keys, ivs, file keys and nonce prefixes all come from here.
//! A missing or failing OS generator is reported as [`RandomnessUnavailable`] rather
//! than a panic, so a client can tell the person instead of crashing.

/// The operating system's random number generator failed; nothing was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomnessUnavailable(getrandom::Error);

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), RandomnessUnavailable> {
    getrandom::getrandom(buf).map_err(RandomnessUnavailable)
}

/// `N` fresh random bytes.
pub(crate) fn random_array<const N: usize>() -> Result<[u8; N], RandomnessUnavailable> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}
