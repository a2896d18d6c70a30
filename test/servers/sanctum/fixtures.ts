/**
 * Fixed facts of protocols/sanctum.md §13: the RFC 8032 §7.1 TEST 1 key, a challenge and its
 * signature, and the `.key.enc` of the same seed.
 */
export const VECTOR = {
  seedHex: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  publicKeyHex: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  challengeHex: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  signatureHex:
    '00c1db988bb12fd7351a6054ae3fac90fab7e4fc56b1651c7181f5f55f896f66' +
    '3933d3a90605d9058e9d0ac45950ee2d3c9c9b14857415587179fe0ccac35f09',
  passphrase: 'correct horse',
  pbkdf2KeyHex: '9d3378ac2fe548e173ec37bb1b83922c41186f4dd47b40df5cd960e9367d673b',
  keyEncText:
    '11111111111111111111111111111111' +
    '222222222222222222222222222222222222222222222222' +
    '8db3cda0cd07af2616823e76ed016a9e6b1631c303d293c9bc078eba5b54e87ad8a81c781ab1d5a5565c6287361dcc9b',
  authenticateExample: '{"id":1,"method":"authenticate","params":{"agent_name":"test"}}',
  valueText: 'sk-test-123',
  valueHex: '736b2d746573742d313233',
  basicBase64: 'c2stdGVzdC0xMjM=',
} as const

/** A second, unrelated key (RFC 8032 §7.1 TEST 2) for "wrong key" tests. */
export const OTHER_SEED_HEX = '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb'
