//! StreamChat end-to-end encryption v2 (issue #19, `docs/crypto.md` §16): one member's
//! MLS (RFC 9420) state for one room, sans I/O. Callers hand in bytes from the ordered
//! room log and get bytes to put on it; no sockets, no async runtime, no clock of our own
//! (openmls checks KeyPackage lifetimes against the system clock).
//!
//! # Group configuration
//!
//! The browser client implements the same with ts-mls, so every member must use exactly
//! this:
//! - ciphersuite **0x0001**, `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`;
//! - credential: a `BasicCredential` whose identity is the 32-byte raw Ed25519 public key
//!   of the member's session [`IdentityKey`], and the leaf's signature key is that same
//!   key, so a member's fingerprint is the same in every epoch. A KeyPackage, an added
//!   leaf or an UpdatePath leaf whose credential is anything else is refused, as is a
//!   commit that changes its committer's signature key;
//! - group id: `SHA-256("streamchat mls v1 group" || room id as UTF-8)` ([`group_id`]);
//! - `use_ratchet_tree_extension = true`: the Welcome carries the ratchet tree;
//! - wire format policy `PURE_CIPHERTEXT`: commits and application messages are all
//!   `PrivateMessage`s;
//! - `max_past_epochs = 4` ([`MAX_PAST_EPOCHS`]): a message sealed in one of the last four
//!   epochs still opens after the commits that followed it;
//! - sender ratchet configuration: the openmls default (out of order tolerance 5,
//!   maximum forward distance 1000);
//! - padding: application and handshake ciphertexts are padded to a multiple of
//!   [`PADDING`] = 32 bytes;
//! - commits carry only Add and Remove proposals, by value (plus the committer's
//!   UpdatePath); standalone proposals are refused.
//!
//! # Commits and the room log
//!
//! Every member, the author included, applies commits in the order of the room log. So
//! [`RoomGroup::add`] and [`RoomGroup::remove`] return the commit as bytes to publish and
//! leave the epoch where it is: the author's commit stays pending until [`RoomGroup::process`]
//! sees those same bytes come back from the log ([`Processed::Epoch`] with `own: true`).
//! If another commit for the same epoch is first on the log, everyone applies that one,
//! the author's pending commit is discarded (`discarded_own: true`), and when the loser
//! comes back from the log every member refuses it as [`Error::Stale`]; its author
//! commits again on the new epoch. A Welcome must be handed to the newcomer only once the
//! commit that made it was applied (`own: true`).
//!
//! ```
//! use streamchat_crypto::IdentityKey;
//! use streamchat_mls::{Processed, RoomGroup};
//!
//! let (alice, bob) = (IdentityKey::generate()?, IdentityKey::generate()?);
//! let mut a = RoomGroup::create(&alice, "room-1")?;
//! // Bob publishes a KeyPackage; Alice commits his Add.
//! let (mut pending, key_package) = RoomGroup::key_package(&bob, "room-1")?;
//! let proposed = a.add(&[&key_package])?;
//! // The commit comes back from the room log: Alice applies it, then sends the Welcome.
//! assert!(matches!(a.process(&proposed.commit)?, Processed::Epoch { own: true, .. }));
//! let mut b = pending.join(&proposed.welcome.expect("an add makes a Welcome"))?;
//! assert_eq!(a.authenticator(), b.authenticator());
//!
//! let sealed = a.seal(b"hi bob")?;
//! match b.process(&sealed)? {
//!     Processed::Message { sender, plaintext } => {
//!         assert_eq!(sender, alice.public_key());
//!         assert_eq!(plaintext, b"hi bob");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use ed25519_dalek::Signer as _;
use openmls::prelude::*;
use openmls_traits::signatures::{Signer, SignerError};
use openmls_traits::storage::StorageProvider as _;
use sha2::{Digest, Sha256};
use streamchat_crypto::{IdentityKey, PublicKey};
use tls_codec::{Deserialize as _, Serialize as _};

use storage::Provider;

mod storage;

/// The ciphersuite, 0x0001: X25519, AES-128-GCM, SHA-256, Ed25519.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
/// How many past epochs' secrets each member keeps to open late application messages.
pub const MAX_PAST_EPOCHS: usize = 4;
/// Ciphertexts are padded to a multiple of this many bytes.
pub const PADDING: usize = 32;
/// The prefix hashed with the room id into the MLS group id.
pub const GROUP_ID_LABEL: &[u8] = b"streamchat mls v1 group";

/// What can go wrong. No input, however malformed, makes this crate panic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a well-formed MLS message of the expected kind.
    #[error("malformed MLS message: {0}")]
    Malformed(String),
    /// A commit made for an epoch this group has already left: another commit for that
    /// epoch came first on the room log. Its author should commit again.
    #[error("stale commit for epoch {epoch}: the group is at epoch {current}")]
    Stale {
        /// The epoch the commit was made for.
        epoch: u64,
        /// The group's epoch.
        current: u64,
    },
    /// A message for an epoch this member has not reached: a commit is missing.
    #[error("message for epoch {epoch}, ahead of the group's epoch {current}")]
    FutureEpoch {
        /// The epoch of the message.
        epoch: u64,
        /// The group's epoch.
        current: u64,
    },
    /// This member was removed from the group (or never joined it).
    #[error("not a member of this group")]
    NotAMember,
    /// The public key to remove is not a member of the group.
    #[error("{0} is not a member of this group")]
    UnknownMember(Box<PublicKey>),
    /// The message or Welcome belongs to another room's group.
    #[error("the message belongs to another group")]
    WrongGroup,
    /// A credential is not a BasicCredential of the leaf's own Ed25519 signature key, or a
    /// commit would change its committer's key.
    #[error("bad credential: {0}")]
    BadCredential(String),
    /// The message is well formed but not something this engine accepts (a standalone
    /// proposal, a commit with a proposal other than Add and Remove).
    #[error("refused: {0}")]
    Refused(String),
    /// A commit of this member's is waiting for the room log: process it (or call
    /// [`RoomGroup::discard_pending`]) before making another.
    #[error("a commit is pending on the room log")]
    CommitPending,
    /// This member's own commit came back from the log but its pending state was
    /// discarded: the group cannot follow the room any more and must be rejoined.
    #[error("own commit is on the log but its state was discarded")]
    Desynchronized,
    /// The message cannot be opened with the keys this member holds: sealed before it
    /// joined, too far in the past, or forged.
    #[error("cannot open the message: {0}")]
    Undecryptable(String),
    /// The PendingJoin was already used to join.
    #[error("this pending join was already used")]
    AlreadyJoined,
    /// Any other failure reported by openmls or the crypto provider.
    #[error("MLS library: {0}")]
    Library(String),
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The MLS group id of a room: `SHA-256("streamchat mls v1 group" || room as UTF-8)`.
pub fn group_id(room: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(GROUP_ID_LABEL);
    h.update(room.as_bytes());
    h.finalize().into()
}

/// The MLS signer: the member's session Ed25519 key, signing the labelled content
/// openmls hands it (pure Ed25519, RFC 8032).
struct MlsSigner(ed25519_dalek::SigningKey);

impl MlsSigner {
    fn new(identity: &IdentityKey) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(
            &identity.seed_bytes(),
        ))
    }
}

impl Signer for MlsSigner {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.0.sign(payload).to_bytes().to_vec())
    }

    fn signature_scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

fn credential_with_key(identity: &IdentityKey) -> CredentialWithKey {
    let public = identity.public_key().to_bytes().to_vec();
    CredentialWithKey {
        credential: BasicCredential::new(public.clone()).into(),
        signature_key: public.into(),
    }
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .padding_size(PADDING)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .use_ratchet_tree_extension(true)
        .sender_ratchet_configuration(SenderRatchetConfiguration::default())
        .build()
}

fn create_config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .padding_size(PADDING)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .use_ratchet_tree_extension(true)
        .sender_ratchet_configuration(SenderRatchetConfiguration::default())
        .build()
}

fn lib(e: impl fmt::Debug) -> Error {
    Error::Library(format!("{e:?}"))
}

fn serialize(message: &MlsMessageOut) -> Result<Vec<u8>> {
    message.tls_serialize_detached().map_err(lib)
}

fn decode(bytes: &[u8]) -> Result<MlsMessageBodyIn> {
    MlsMessageIn::tls_deserialize_exact(bytes)
        .map(MlsMessageIn::extract)
        .map_err(|e| Error::Malformed(e.to_string()))
}

/// The public key of a leaf, checking that its credential is a BasicCredential naming
/// that same key.
fn leaf_key(credential: &Credential, signature_key: &[u8]) -> Result<PublicKey> {
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|_| Error::BadCredential("not a BasicCredential".into()))?;
    if basic.identity() != signature_key {
        return Err(Error::BadCredential(
            "the credential does not name the leaf's signature key".into(),
        ));
    }
    key_from_bytes(signature_key)
}

fn key_from_bytes(bytes: &[u8]) -> Result<PublicKey> {
    let raw: &[u8; 32] = bytes
        .try_into()
        .map_err(|_| Error::BadCredential("not a 32-byte Ed25519 key".into()))?;
    PublicKey::from_bytes(raw).map_err(|e| Error::BadCredential(e.to_string()))
}

/// The identity key a KeyPackage (TLS-serialized MLSMessage bytes) is for, once its
/// signature, ciphersuite and credential check out: what a client compares with the
/// knocker's profile key before showing the knock (docs/crypto.md §17.2).
pub fn key_package_identity(bytes: &[u8]) -> Result<PublicKey> {
    let MlsMessageBodyIn::KeyPackage(kp) = decode(bytes)? else {
        return Err(Error::Malformed("not a KeyPackage".into()));
    };
    let provider = Provider::default();
    let kp = kp
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .map_err(|e| Error::Malformed(format!("invalid KeyPackage: {e}")))?;
    if kp.ciphersuite() != CIPHERSUITE {
        return Err(Error::Refused("KeyPackage of another ciphersuite".into()));
    }
    let leaf = kp.leaf_node();
    leaf_key(leaf.credential(), leaf.signature_key().as_slice())
}

/// A newcomer's private half of its KeyPackage, waiting for a Welcome.
pub struct PendingJoin {
    /// Holds the KeyPackage's private keys; `None` once used.
    provider: Option<Provider>,
    /// The KeyPackage and its private keys, put back in the provider's storage when a
    /// Welcome fails (openmls deletes them as soon as a Welcome names the KeyPackage, and
    /// anyone who saw the KeyPackage can make such a Welcome).
    bundle: KeyPackageBundle,
    signer: MlsSigner,
    identity: PublicKey,
    group_id: [u8; 32],
}

impl fmt::Debug for PendingJoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingJoin")
            .field("identity", &self.identity)
            .field("used", &self.provider.is_none())
            .finish_non_exhaustive()
    }
}

impl PendingJoin {
    /// Joins from a Welcome (TLS-serialized MLSMessage bytes). A Welcome that is
    /// malformed, not for this KeyPackage or for another room returns an error and leaves
    /// this PendingJoin usable with another Welcome.
    pub fn join(&mut self, welcome: &[u8]) -> Result<RoomGroup> {
        let provider = self.provider.as_ref().ok_or(Error::AlreadyJoined)?;
        match self.try_join(provider, welcome) {
            Ok(group) => {
                let provider = self.provider.take().ok_or(Error::AlreadyJoined)?;
                Ok(RoomGroup {
                    provider,
                    signer: MlsSigner(self.signer.0.clone()),
                    group,
                    pending: None,
                })
            }
            Err(e) => {
                let hash_ref = self
                    .bundle
                    .key_package()
                    .hash_ref(provider.crypto())
                    .map_err(lib)?;
                provider
                    .storage()
                    .write_key_package(&hash_ref, &self.bundle)
                    .map_err(lib)?;
                Err(e)
            }
        }
    }

    fn try_join(&self, provider: &Provider, welcome: &[u8]) -> Result<MlsGroup> {
        let MlsMessageBodyIn::Welcome(welcome) = decode(welcome)? else {
            return Err(Error::Malformed("not a Welcome".into()));
        };
        let staged = StagedWelcome::new_from_welcome(provider, &join_config(), welcome, None)
            .map_err(|e| match e {
                WelcomeError::NoMatchingKeyPackage | WelcomeError::NoMatchingEncryptionKey => {
                    Error::Undecryptable("the Welcome is not for this KeyPackage".into())
                }
                other => lib(other),
            })?;
        if staged.group_context().group_id().as_slice() != self.group_id {
            return Err(Error::WrongGroup);
        }
        for member in staged.members() {
            leaf_key(&member.credential, &member.signature_key)?;
        }
        staged.into_group(provider).map_err(lib)
    }
}

/// A commit made by this member, to put on the room log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposed {
    /// The commit, a TLS-serialized MLSMessage (PrivateMessage), for the room log.
    pub commit: Vec<u8>,
    /// For an add, the Welcome for the newcomers (TLS-serialized MLSMessage). Hand it
    /// over only once [`RoomGroup::process`] applied the commit (`own: true`).
    pub welcome: Option<Vec<u8>>,
}

/// What [`RoomGroup::process`] made of one message from the room log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// An application message from another member.
    Message {
        /// The sender's identity key (its fingerprint is what people compare).
        sender: PublicKey,
        /// The plaintext.
        plaintext: Vec<u8>,
    },
    /// This member's own application message, back from the log (it cannot be
    /// decrypted by its sender; the caller already has its plaintext).
    OwnMessage,
    /// A commit was applied: the group moved to a new epoch.
    Epoch {
        /// The new epoch.
        epoch: u64,
        /// The member who committed.
        committer: PublicKey,
        /// Members added by the commit.
        added: Vec<PublicKey>,
        /// Members removed by the commit.
        removed: Vec<PublicKey>,
        /// The commit was this member's own pending commit.
        own: bool,
        /// This member had a pending commit for the previous epoch, now discarded
        /// because this other commit came first: commit again on the new epoch.
        discarded_own: bool,
    },
    /// A commit removed this member: it can no longer seal or open anything new.
    Removed {
        /// The epoch the commit moved the group into, which this member is not part of.
        epoch: u64,
        /// The member who committed.
        committer: PublicKey,
    },
}

/// One member's MLS state for one room.
pub struct RoomGroup {
    provider: Provider,
    signer: MlsSigner,
    group: MlsGroup,
    /// The bytes of this member's commit waiting for the room log.
    pending: Option<Vec<u8>>,
}

impl fmt::Debug for RoomGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomGroup")
            .field("epoch", &self.epoch())
            .field("members", &self.members())
            .field("active", &self.group.is_active())
            .field("pending", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl RoomGroup {
    /// A newcomer's KeyPackage for `room`, as TLS-serialized MLSMessage bytes to publish;
    /// the returned [`PendingJoin`] keeps its private keys until the Welcome comes.
    pub fn key_package(identity: &IdentityKey, room: &str) -> Result<(PendingJoin, Vec<u8>)> {
        let provider = Provider::default();
        let signer = MlsSigner::new(identity);
        let bundle = KeyPackage::builder()
            .build(
                CIPHERSUITE,
                &provider,
                &signer,
                credential_with_key(identity),
            )
            .map_err(lib)?;
        let bytes = serialize(&MlsMessageOut::from(bundle.key_package().clone()))?;
        let pending = PendingJoin {
            provider: Some(provider),
            bundle,
            signer,
            identity: identity.public_key(),
            group_id: group_id(room),
        };
        Ok((pending, bytes))
    }

    /// The first member founds the room's group, alone, at epoch 0.
    pub fn create(identity: &IdentityKey, room: &str) -> Result<Self> {
        let provider = Provider::default();
        let signer = MlsSigner::new(identity);
        let group = MlsGroup::new_with_group_id(
            &provider,
            &signer,
            &create_config(),
            GroupId::from_slice(&group_id(room)),
            credential_with_key(identity),
        )
        .map_err(lib)?;
        Ok(Self {
            provider,
            signer,
            group,
            pending: None,
        })
    }

    fn ensure_active(&self) -> Result<()> {
        if self.group.is_active() {
            Ok(())
        } else {
            Err(Error::NotAMember)
        }
    }

    /// Keeps `commit` as this member's pending one (applied when the room log brings it back).
    fn keep_pending(&mut self, commit: Vec<u8>, welcome: Option<Vec<u8>>) -> Proposed {
        self.pending = Some(commit.clone());
        Proposed { commit, welcome }
    }

    fn ensure_no_pending(&self) -> Result<()> {
        if self.pending.is_some() || self.group.pending_commit().is_some() {
            Err(Error::CommitPending)
        } else {
            Ok(())
        }
    }

    /// Commits the Add of each KeyPackage (TLS-serialized MLSMessage bytes, as
    /// [`RoomGroup::key_package`] makes them). The epoch does not change until the commit
    /// comes back from the room log through [`RoomGroup::process`].
    pub fn add(&mut self, key_packages: &[&[u8]]) -> Result<Proposed> {
        self.ensure_active()?;
        self.ensure_no_pending()?;
        let mut validated = Vec::with_capacity(key_packages.len());
        for bytes in key_packages {
            let MlsMessageBodyIn::KeyPackage(kp) = decode(bytes)? else {
                return Err(Error::Malformed("not a KeyPackage".into()));
            };
            let kp = kp
                .validate(self.provider.crypto(), ProtocolVersion::Mls10)
                .map_err(|e| Error::Malformed(format!("invalid KeyPackage: {e}")))?;
            if kp.ciphersuite() != CIPHERSUITE {
                return Err(Error::Refused("KeyPackage of another ciphersuite".into()));
            }
            let leaf = kp.leaf_node();
            leaf_key(leaf.credential(), leaf.signature_key().as_slice())?;
            validated.push(kp);
        }
        if validated.is_empty() {
            return Err(Error::Refused("nothing to add".into()));
        }
        let (commit, welcome, _group_info) = self
            .group
            .add_members(&self.provider, &self.signer, &validated)
            .map_err(lib)?;
        Ok(self.keep_pending(serialize(&commit)?, Some(serialize(&welcome)?)))
    }

    /// Commits the Remove of each member. The epoch does not change until the commit
    /// comes back from the room log through [`RoomGroup::process`]. A member cannot
    /// remove itself.
    pub fn remove(&mut self, members: &[PublicKey]) -> Result<Proposed> {
        self.ensure_active()?;
        self.ensure_no_pending()?;
        let mut leaves = Vec::with_capacity(members.len());
        for key in members {
            let leaf = self
                .group
                .members()
                .find(|m| m.signature_key.as_slice() == key.to_bytes().as_slice())
                .ok_or_else(|| Error::UnknownMember(Box::new(*key)))?;
            if leaf.index == self.group.own_leaf_index() {
                return Err(Error::Refused("a member cannot remove itself".into()));
            }
            leaves.push(leaf.index);
        }
        if leaves.is_empty() {
            return Err(Error::Refused("nothing to remove".into()));
        }
        let (commit, _welcome, _group_info) = self
            .group
            .remove_members(&self.provider, &self.signer, &leaves)
            .map_err(lib)?;
        Ok(self.keep_pending(serialize(&commit)?, None))
    }

    /// Commits an update of this member's own leaf (fresh HPKE keys, same identity):
    /// post-compromise security without a membership change. Pending like
    /// [`RoomGroup::add`].
    pub fn update(&mut self) -> Result<Proposed> {
        self.ensure_active()?;
        self.ensure_no_pending()?;
        let bundle = self
            .group
            .self_update(&self.provider, &self.signer, LeafNodeParameters::default())
            .map_err(lib)?;
        Ok(self.keep_pending(serialize(bundle.commit())?, None))
    }

    /// Forgets this member's pending commit. Only for a commit that will never be on the
    /// room log (its publish was refused): if it shows up later, [`RoomGroup::process`]
    /// returns [`Error::Desynchronized`].
    pub fn discard_pending(&mut self) -> Result<()> {
        self.pending = None;
        self.group
            .clear_pending_commit(self.provider.storage())
            .map_err(lib)
    }

    /// Whether a commit of this member's is waiting for the room log.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Seals an application message (a PrivateMessage, TLS-serialized MLSMessage bytes)
    /// in the current epoch.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.ensure_active()?;
        let message = self
            .group
            .create_message(&self.provider, &self.signer, plaintext)
            .map_err(lib)?;
        serialize(&message)
    }

    /// Processes one message from the room log, in log order: a commit (this member's
    /// own or another's) or an application message.
    pub fn process(&mut self, bytes: &[u8]) -> Result<Processed> {
        self.ensure_active()?;
        if self.pending.as_deref() == Some(bytes) {
            return self.merge_own();
        }
        let message = match decode(bytes)? {
            MlsMessageBodyIn::PrivateMessage(m) => ProtocolMessage::from(m),
            MlsMessageBodyIn::PublicMessage(_) => {
                return Err(Error::Refused(
                    "a PublicMessage (this group uses PrivateMessages only)".into(),
                ));
            }
            _ => return Err(Error::Malformed("not a PrivateMessage".into())),
        };
        if message.group_id().as_slice() != self.group.group_id().as_slice() {
            return Err(Error::WrongGroup);
        }
        let current = self.group.epoch().as_u64();
        let epoch = message.epoch().as_u64();
        if epoch > current {
            return Err(Error::FutureEpoch { epoch, current });
        }
        let handshake = message.is_handshake_message();
        if handshake && epoch < current {
            return Err(Error::Stale { epoch, current });
        }
        let processed = self
            .group
            .process_message(&self.provider, message)
            .map_err(map_process_error)?;
        let sender_credential = processed.credential().clone();
        let sender = processed.sender().clone();
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => {
                let Sender::Member(leaf) = sender else {
                    return Err(Error::Refused(
                        "application message from a non-member".into(),
                    ));
                };
                let sender = self.sender_key(&sender_credential, leaf)?;
                Ok(Processed::Message {
                    sender,
                    plaintext: app.into_bytes(),
                })
            }
            ProcessedMessageContent::OwnPrivateMessage => {
                if handshake {
                    Err(Error::Desynchronized)
                } else {
                    Ok(Processed::OwnMessage)
                }
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                let Sender::Member(leaf) = sender else {
                    return Err(Error::Refused("commit from a non-member".into()));
                };
                self.apply_commit(*staged, leaf)
            }
            ProcessedMessageContent::ProposalMessage(_)
            | ProcessedMessageContent::ExternalJoinProposalMessage(_) => {
                Err(Error::Refused("standalone proposal".into()))
            }
            #[allow(unreachable_patterns)]
            _ => Err(Error::Refused("unsupported message content".into())),
        }
    }

    /// The current member key of `leaf`, checked against the credential the message
    /// carried; for a past-epoch sender no longer in the tree, the credential alone.
    fn sender_key(&self, credential: &Credential, leaf: LeafNodeIndex) -> Result<PublicKey> {
        let basic = BasicCredential::try_from(credential.clone())
            .map_err(|_| Error::BadCredential("not a BasicCredential".into()))?;
        let key = key_from_bytes(basic.identity())?;
        if let Some(member) = self.group.member_at(leaf)
            && member.credential == *credential
        {
            return leaf_key(&member.credential, &member.signature_key);
        }
        Ok(key)
    }

    /// Checks a staged commit against this engine's rules and merges it.
    fn apply_commit(
        &mut self,
        staged: StagedCommit,
        committer: LeafNodeIndex,
    ) -> Result<Processed> {
        let (committer, added, removed) = self.commit_changes(&staged, committer)?;
        let discarded_own = self.pending.is_some() || self.group.pending_commit().is_some();
        let self_removed = staged.self_removed();
        let epoch = staged.epoch().as_u64();
        self.group
            .merge_staged_commit(&self.provider, staged)
            .map_err(lib)?;
        self.pending = None;
        if self_removed {
            return Ok(Processed::Removed { epoch, committer });
        }
        Ok(Processed::Epoch {
            epoch: self.group.epoch().as_u64(),
            committer,
            added,
            removed,
            own: false,
            discarded_own,
        })
    }

    /// The committer, added and removed keys of a staged commit, refusing what the
    /// group configuration does not allow.
    fn commit_changes(
        &self,
        staged: &StagedCommit,
        committer: LeafNodeIndex,
    ) -> Result<(PublicKey, Vec<PublicKey>, Vec<PublicKey>)> {
        let committer_member = self
            .group
            .member_at(committer)
            .ok_or_else(|| Error::Refused("commit from an empty leaf".into()))?;
        let committer_key = leaf_key(
            &committer_member.credential,
            &committer_member.signature_key,
        )?;
        for queued in staged.queued_proposals() {
            match queued.proposal() {
                Proposal::Add(_) | Proposal::Remove(_) => {}
                other => {
                    return Err(Error::Refused(format!(
                        "commit with a {:?} proposal",
                        other.proposal_type()
                    )));
                }
            }
        }
        if let Some(leaf) = staged.update_path_leaf_node() {
            let key = leaf_key(leaf.credential(), leaf.signature_key().as_slice())?;
            if key != committer_key {
                return Err(Error::BadCredential(
                    "the commit changes its committer's identity key".into(),
                ));
            }
        }
        let mut added = Vec::new();
        for add in staged.add_proposals() {
            let leaf = add.add_proposal().key_package().leaf_node();
            added.push(leaf_key(
                leaf.credential(),
                leaf.signature_key().as_slice(),
            )?);
        }
        let mut removed = Vec::new();
        for remove in staged.remove_proposals() {
            let member = self
                .group
                .member_at(remove.remove_proposal().removed())
                .ok_or_else(|| Error::Refused("removal of an empty leaf".into()))?;
            removed.push(key_from_bytes(&member.signature_key)?);
        }
        Ok((committer_key, added, removed))
    }

    /// Merges this member's pending commit, which just came back from the room log.
    fn merge_own(&mut self) -> Result<Processed> {
        let (committer, added, removed) = {
            let staged = self.group.pending_commit().ok_or(Error::Desynchronized)?;
            self.commit_changes(staged, self.group.own_leaf_index())?
        };
        self.group
            .merge_pending_commit(&self.provider)
            .map_err(lib)?;
        self.pending = None;
        Ok(Processed::Epoch {
            epoch: self.group.epoch().as_u64(),
            committer,
            added,
            removed,
            own: true,
            discarded_own: false,
        })
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.group.epoch().as_u64()
    }

    /// The epoch authenticator (RFC 9420 §8.7): equal for every member in the same epoch
    /// of the same group; members can compare it out of band.
    pub fn authenticator(&self) -> Vec<u8> {
        self.group.epoch_authenticator().as_slice().to_vec()
    }

    /// The identity key of every member, in leaf order. A leaf whose key does not parse
    /// (impossible for leaves this engine accepted) is skipped.
    pub fn members(&self) -> Vec<PublicKey> {
        self.group
            .members()
            .filter_map(|m| key_from_bytes(&m.signature_key).ok())
            .collect()
    }

    /// Whether this member is still in the group (false once a commit removed it).
    pub fn is_member(&self) -> bool {
        self.group.is_active()
    }
}

fn map_process_error<E: fmt::Debug>(e: ProcessMessageError<E>) -> Error {
    match e {
        ProcessMessageError::ValidationError(v) => match v {
            ValidationError::WrongGroupId => Error::WrongGroup,
            ValidationError::UnableToDecrypt(d) => Error::Undecryptable(format!("{d:?}")),
            ValidationError::NoPastEpochData => {
                Error::Undecryptable("no secrets for that epoch".into())
            }
            other => Error::Malformed(format!("{other:?}")),
        },
        ProcessMessageError::GroupStateError(MlsGroupStateError::UseAfterEviction) => {
            Error::NotAMember
        }
        ProcessMessageError::IncompatibleWireFormat => {
            Error::Refused("wire format not allowed by the group's policy".into())
        }
        ProcessMessageError::InvalidCommit(c) => Error::Malformed(format!("invalid commit: {c:?}")),
        other => lib(other),
    }
}
