//! The storage this crate hands openmls: the private keys openmls reads back while it
//! runs, and nothing of the group's state.
//!
//! openmls keeps a group's whole state (ratchet tree, epoch and message secrets,
//! transcript hashes, proposals) in the [`MlsGroup`](openmls::prelude::MlsGroup) it
//! returns, and also writes a copy of it to its storage after every change so that
//! `MlsGroup::load` can bring the group back after a restart. Its `MemoryStorage` makes
//! that copy as JSON, and the message secrets (the sender ratchets, with the member lists
//! of the past epochs kept for late messages) are rewritten after every message sealed
//! or opened: 2.1 ms per message in a room of 500 (docs/benchmarks.md, "MLS epoch
//! changes"). StreamChat never loads a group: a room's group lives as long as the session
//! that holds it and is gone with it (an ephemeral room; a member who comes back knocks
//! again, docs/crypto.md §17.3). So [`RoomStorage`] keeps no copy of group state. Its
//! writes do nothing and its reads find nothing, which is what openmls's `load` reads as
//! "no such group" (openmls reads group state only there). What openmls does read back
//! while it runs, the private halves of KeyPackages, HPKE and signature keys, the epoch
//! encryption keys of the ratchet tree and PSKs, is kept in a `MemoryStorage`.
//!
//! Keeping no copy is also one copy fewer of the secrets in memory: `MemoryStorage`
//! frees each overwritten JSON copy of the message secrets without zeroizing it.

use openmls_rust_crypto::{MemoryStorage, MemoryStorageError, RustCrypto};
use openmls_traits::OpenMlsProvider;
use openmls_traits::storage::{CURRENT_VERSION, StorageProvider, traits};

/// One member's openmls provider: RustCrypto and a [`RoomStorage`].
#[derive(Debug, Default)]
pub(crate) struct Provider {
    crypto: RustCrypto,
    storage: RoomStorage,
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = RoomStorage;

    fn storage(&self) -> &RoomStorage {
        &self.storage
    }

    fn crypto(&self) -> &RustCrypto {
        &self.crypto
    }

    fn rand(&self) -> &RustCrypto {
        &self.crypto
    }
}

/// openmls's storage for one member: private keys in a `MemoryStorage`, no group state.
#[derive(Debug, Default)]
pub(crate) struct RoomStorage(MemoryStorage);

/// Methods that hand private keys to the `MemoryStorage`.
macro_rules! keys {
    ($(fn $name:ident<$($g:ident: $b:ident),*>(&self $(, $a:ident: $t:ty)*) -> $r:ty;)*) => {$(
        fn $name<$($g: traits::$b<CURRENT_VERSION>),*>(&self $(, $a: $t)*) -> Result<$r, MemoryStorageError> {
            self.0.$name($($a),*)
        }
    )*};
}

/// Methods on group state: writes and deletes do nothing, reads find nothing.
macro_rules! group_state {
    ($(fn $name:ident<$($g:ident: $b:ident),*>(&self $(, $a:ident: $t:ty)*) -> $r:ty;)*) => {$(
        fn $name<$($g: traits::$b<CURRENT_VERSION>),*>(&self $(, _: $t)*) -> Result<$r, MemoryStorageError> {
            Ok(<$r>::default())
        }
    )*};
}

impl StorageProvider<CURRENT_VERSION> for RoomStorage {
    type Error = MemoryStorageError;

    keys! {
        fn write_signature_key_pair<SignaturePublicKey: SignaturePublicKey, SignatureKeyPair: SignatureKeyPair>(&self, public_key: &SignaturePublicKey, signature_key_pair: &SignatureKeyPair) -> ();
        fn write_encryption_key_pair<EncryptionKey: EncryptionKey, HpkeKeyPair: HpkeKeyPair>(&self, public_key: &EncryptionKey, key_pair: &HpkeKeyPair) -> ();
        fn write_encryption_epoch_key_pairs<GroupId: GroupId, EpochKey: EpochKey, HpkeKeyPair: HpkeKeyPair>(&self, group_id: &GroupId, epoch: &EpochKey, leaf_index: u32, key_pairs: &[HpkeKeyPair]) -> ();
        fn write_key_package<HashReference: HashReference, KeyPackage: KeyPackage>(&self, hash_ref: &HashReference, key_package: &KeyPackage) -> ();
        fn write_psk<PskId: PskId, PskBundle: PskBundle>(&self, psk_id: &PskId, psk: &PskBundle) -> ();
        fn signature_key_pair<SignaturePublicKey: SignaturePublicKey, SignatureKeyPair: SignatureKeyPair>(&self, public_key: &SignaturePublicKey) -> Option<SignatureKeyPair>;
        fn encryption_key_pair<HpkeKeyPair: HpkeKeyPair, EncryptionKey: EncryptionKey>(&self, public_key: &EncryptionKey) -> Option<HpkeKeyPair>;
        fn encryption_epoch_key_pairs<GroupId: GroupId, EpochKey: EpochKey, HpkeKeyPair: HpkeKeyPair>(&self, group_id: &GroupId, epoch: &EpochKey, leaf_index: u32) -> Vec<HpkeKeyPair>;
        fn key_package<KeyPackageRef: HashReference, KeyPackage: KeyPackage>(&self, hash_ref: &KeyPackageRef) -> Option<KeyPackage>;
        fn psk<PskBundle: PskBundle, PskId: PskId>(&self, psk_id: &PskId) -> Option<PskBundle>;
        fn delete_signature_key_pair<SignaturePublicKey: SignaturePublicKey>(&self, public_key: &SignaturePublicKey) -> ();
        fn delete_encryption_key_pair<EncryptionKey: EncryptionKey>(&self, public_key: &EncryptionKey) -> ();
        fn delete_encryption_epoch_key_pairs<GroupId: GroupId, EpochKey: EpochKey>(&self, group_id: &GroupId, epoch: &EpochKey, leaf_index: u32) -> ();
        fn delete_key_package<KeyPackageRef: HashReference>(&self, hash_ref: &KeyPackageRef) -> ();
        fn delete_psk<PskKey: PskId>(&self, psk_id: &PskKey) -> ();
    }

    group_state! {
        fn write_mls_join_config<GroupId: GroupId, MlsGroupJoinConfig: MlsGroupJoinConfig>(&self, group_id: &GroupId, config: &MlsGroupJoinConfig) -> ();
        fn append_own_leaf_node<GroupId: GroupId, LeafNode: LeafNode>(&self, group_id: &GroupId, leaf_node: &LeafNode) -> ();
        fn queue_proposal<GroupId: GroupId, ProposalRef: ProposalRef, QueuedProposal: QueuedProposal>(&self, group_id: &GroupId, proposal_ref: &ProposalRef, proposal: &QueuedProposal) -> ();
        fn write_tree<GroupId: GroupId, TreeSync: TreeSync>(&self, group_id: &GroupId, tree: &TreeSync) -> ();
        fn write_interim_transcript_hash<GroupId: GroupId, InterimTranscriptHash: InterimTranscriptHash>(&self, group_id: &GroupId, interim_transcript_hash: &InterimTranscriptHash) -> ();
        fn write_context<GroupId: GroupId, GroupContext: GroupContext>(&self, group_id: &GroupId, group_context: &GroupContext) -> ();
        fn write_confirmation_tag<GroupId: GroupId, ConfirmationTag: ConfirmationTag>(&self, group_id: &GroupId, confirmation_tag: &ConfirmationTag) -> ();
        fn write_group_state<GroupState: GroupState, GroupId: GroupId>(&self, group_id: &GroupId, group_state: &GroupState) -> ();
        fn write_resumption_psk_store<GroupId: GroupId, ResumptionPskStore: ResumptionPskStore>(&self, group_id: &GroupId, resumption_psk_store: &ResumptionPskStore) -> ();
        fn write_own_leaf_index<GroupId: GroupId, LeafNodeIndex: LeafNodeIndex>(&self, group_id: &GroupId, own_leaf_index: &LeafNodeIndex) -> ();
        fn write_group_epoch_secrets<GroupId: GroupId, GroupEpochSecrets: GroupEpochSecrets>(&self, group_id: &GroupId, group_epoch_secrets: &GroupEpochSecrets) -> ();
        fn mls_group_join_config<GroupId: GroupId, MlsGroupJoinConfig: MlsGroupJoinConfig>(&self, group_id: &GroupId) -> Option<MlsGroupJoinConfig>;
        fn own_leaf_nodes<GroupId: GroupId, LeafNode: LeafNode>(&self, group_id: &GroupId) -> Vec<LeafNode>;
        fn queued_proposal_refs<GroupId: GroupId, ProposalRef: ProposalRef>(&self, group_id: &GroupId) -> Vec<ProposalRef>;
        fn queued_proposals<GroupId: GroupId, ProposalRef: ProposalRef, QueuedProposal: QueuedProposal>(&self, group_id: &GroupId) -> Vec<(ProposalRef, QueuedProposal)>;
        fn tree<GroupId: GroupId, TreeSync: TreeSync>(&self, group_id: &GroupId) -> Option<TreeSync>;
        fn group_context<GroupId: GroupId, GroupContext: GroupContext>(&self, group_id: &GroupId) -> Option<GroupContext>;
        fn interim_transcript_hash<GroupId: GroupId, InterimTranscriptHash: InterimTranscriptHash>(&self, group_id: &GroupId) -> Option<InterimTranscriptHash>;
        fn confirmation_tag<GroupId: GroupId, ConfirmationTag: ConfirmationTag>(&self, group_id: &GroupId) -> Option<ConfirmationTag>;
        fn group_state<GroupState: GroupState, GroupId: GroupId>(&self, group_id: &GroupId) -> Option<GroupState>;
        fn resumption_psk_store<GroupId: GroupId, ResumptionPskStore: ResumptionPskStore>(&self, group_id: &GroupId) -> Option<ResumptionPskStore>;
        fn own_leaf_index<GroupId: GroupId, LeafNodeIndex: LeafNodeIndex>(&self, group_id: &GroupId) -> Option<LeafNodeIndex>;
        fn group_epoch_secrets<GroupId: GroupId, GroupEpochSecrets: GroupEpochSecrets>(&self, group_id: &GroupId) -> Option<GroupEpochSecrets>;
        fn remove_proposal<GroupId: GroupId, ProposalRef: ProposalRef>(&self, group_id: &GroupId, proposal_ref: &ProposalRef) -> ();
        fn delete_own_leaf_nodes<GroupId: GroupId>(&self, group_id: &GroupId) -> ();
        fn delete_group_config<GroupId: GroupId>(&self, group_id: &GroupId) -> ();
        fn delete_tree<GroupId: GroupId>(&self, group_id: &GroupId) -> ();
        fn delete_confirmation_tag<GroupId: GroupId>(&self, group_id: &GroupId) -> ();
        fn delete_group_state<GroupId: GroupId>(&self, group_id: &GroupId) -> ();
        fn delete_context<GroupId: GroupId>(&self, group_id: &GroupId) -> ();
        fn delete_interim_transcript_hash<GroupId: GroupId>(&self, group_id: &GroupId) -> ();
        fn delete_all_resumption_psk_secrets<GroupId: GroupId>(&self, group_id: &GroupId) -> ();
        fn delete_own_leaf_index<GroupId: GroupId>(&self, group_id: &GroupId) -> ();
        fn delete_group_epoch_secrets<GroupId: GroupId>(&self, group_id: &GroupId) -> ();
        fn clear_proposal_queue<GroupId: GroupId, ProposalRef: ProposalRef>(&self, group_id: &GroupId) -> ();
        fn write_message_secrets<GroupId: GroupId, MessageSecrets: MessageSecrets>(&self, group_id: &GroupId, message_secrets: &MessageSecrets) -> ();
        fn message_secrets<GroupId: GroupId, MessageSecrets: MessageSecrets>(&self, group_id: &GroupId) -> Option<MessageSecrets>;
        fn delete_message_secrets<GroupId: GroupId>(&self, group_id: &GroupId) -> ();
    }
}

#[cfg(test)]
mod tests {
    use openmls::prelude::MlsGroup;
    use streamchat_crypto::IdentityKey;

    use crate::{Processed, RoomGroup};

    fn stored_bytes(group: &RoomGroup) -> usize {
        let values = group.provider.storage.0.values.read().unwrap();
        values.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Messages and commits leave the storage as it was: no copy of the group's state is
    /// written, so nothing is serialized per message and no secret is copied.
    #[test]
    fn the_storage_keeps_no_group_state() {
        let (alice, bob, carol) = (
            IdentityKey::generate().unwrap(),
            IdentityKey::generate().unwrap(),
            IdentityKey::generate().unwrap(),
        );
        let mut a = RoomGroup::create(&alice, "room").unwrap();
        let (mut pending, kp) = RoomGroup::key_package(&bob, "room").unwrap();
        let proposed = a.add(&[&kp]).unwrap();
        a.process(&proposed.commit).unwrap();
        let mut b = pending.join(&proposed.welcome.unwrap()).unwrap();

        let (a_before, b_before) = (stored_bytes(&a), stored_bytes(&b));
        for i in 0..20u8 {
            let sealed = a.seal(&[i; 100]).unwrap();
            assert!(matches!(
                b.process(&sealed).unwrap(),
                Processed::Message { .. }
            ));
        }
        assert_eq!((stored_bytes(&a), stored_bytes(&b)), (a_before, b_before));

        // A commit still finds the keys it needs (Carol's join, then a message to her).
        let (mut pending, kp) = RoomGroup::key_package(&carol, "room").unwrap();
        let proposed = b.add(&[&kp]).unwrap();
        b.process(&proposed.commit).unwrap();
        a.process(&proposed.commit).unwrap();
        let mut c = pending.join(&proposed.welcome.unwrap()).unwrap();
        let sealed = a.seal(b"hello carol").unwrap();
        assert!(matches!(
            c.process(&sealed).unwrap(),
            Processed::Message { .. }
        ));

        for group in [&a, &b, &c] {
            let loaded = MlsGroup::load(&group.provider.storage, group.group.group_id());
            assert!(matches!(loaded, Ok(None)));
        }
    }
}
