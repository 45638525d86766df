import Type, { type Static } from 'typebox';

/** A tenant's name: letters, digits, `_`, `.`, `-`; 1 to 64 characters, starting with a letter or digit. */
export const TENANT_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

/** The tenant that owns everything when the API runs without keys (loopback, or `AUTH=off`). */
export const DEFAULT_TENANT = 'default';

/** `key_<16 hex>`: the public id of an API key (never the key itself). */
export const KEY_ID_PATTERN = '^key_[0-9a-f]{16}$';

export const CreateKeyBody = Type.Object(
  { tenant: Type.String({ pattern: TENANT_PATTERN, description: 'The tenant the key acts for: everything it creates belongs to this tenant' }) },
  { additionalProperties: false },
);
export type CreateKeyBody = Static<typeof CreateKeyBody>;

export const KeyParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
export type KeyParams = Static<typeof KeyParams>;

/** A key as listed: never the key itself, which is stored only as a hash. */
export const KeyView = Type.Object({
  id: Type.String({ description: 'The key\'s id, for revoking it' }),
  tenant: Type.String(),
  created_at: Type.String({ description: 'ISO 8601' }),
});
export type KeyView = Static<typeof KeyView>;

/** The answer to creating a key: the only time the key is shown. */
export const KeyCreated = Type.Object({
  id: Type.String(),
  key: Type.String({ description: 'Send it as `Authorization: Bearer <key>`. Shown once: it is stored only as a hash' }),
  tenant: Type.String(),
  created_at: Type.String(),
});
export type KeyCreated = Static<typeof KeyCreated>;

export const KeyList = Type.Object({ object: Type.Literal('list'), data: Type.Array(KeyView) });
export type KeyList = Static<typeof KeyList>;
