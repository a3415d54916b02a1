// What a StreamChat web client would import for MLS with ciphersuite 0x0001.
export {
  createGroup, createCommit, joinGroup, processPrivateMessage, createApplicationMessage,
  generateKeyPackage, encodeMlsMessage, decodeMlsMessage, getCiphersuiteImpl,
  getCiphersuiteFromName, defaultCapabilities, defaultLifetime, emptyPskIndex,
} from "ts-mls";
