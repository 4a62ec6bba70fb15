// What a PostgreSQL text or jsonb value can hold exactly as a JavaScript string says it.

/** Why a string is refused (the message every refusal of one carries). */
export const UNSTORABLE_TEXT = 'must not contain NUL (U+0000) or an unpaired UTF-16 surrogate'

/** With the `u` flag a surrogate pair is one code point (not Cs): only a lone surrogate matches. */
const LONE_SURROGATE = /\p{Cs}/u

/**
 * Whether PostgreSQL stores `value` as sent. Text and jsonb cannot hold NUL (the statement fails), and a
 * lone surrogate has no UTF-8 form: pg sends U+FFFD instead, silently changing a text value (two
 * different strings would then collide), and jsonb refuses its `\ud800` escape.
 */
export const isStorableText = (value: string): boolean => !value.includes('\0') && !LONE_SURROGATE.test(value)
