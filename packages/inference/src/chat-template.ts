/**
 * Renders chat messages with a model's Jinja `chat_template` (from
 * `tokenizer_config.json`), as transformers.js' `apply_chat_template` does.
 */
import { Template } from '@huggingface/jinja';

/** One chat message. */
export interface ChatMessage {
  /** `system`, `user`, `assistant` (or whatever roles the template knows). */
  role: string;
  content: string;
}

/** Options of {@link renderChat}. */
export interface RenderChatOptions {
  /** Append the start of an assistant turn, for generating the reply. @defaultValue true */
  addGenerationPrompt?: boolean;
  /** Special tokens the template may use (`bos_token`, `eos_token`, ...). @defaultValue {} */
  specialTokens?: Record<string, string>;
}

const compiled = new Map<string, Template>();

/** Throws unless `messages` is a non-empty list of `{role, content}` strings. */
export function checkChatMessages(messages: unknown): asserts messages is ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new Error('Chat messages must be a non-empty array');
  messages.forEach((m: unknown, i) => {
    const msg = m as Partial<ChatMessage> | null;
    if (typeof msg !== 'object' || msg === null || typeof msg.role !== 'string' || typeof msg.content !== 'string' || msg.role === '') {
      throw new Error(`Chat message ${i} must be {role: string, content: string}`);
    }
  });
}

/** The prompt text of a chat, rendered with `template`. */
export function renderChat(template: string, messages: readonly ChatMessage[], options: RenderChatOptions = {}): string {
  let t = compiled.get(template);
  if (!t) {
    t = new Template(template);
    compiled.set(template, t);
  }
  return t.render({
    messages: messages.map((m) => ({ role: m.role, content: m.content })),
    add_generation_prompt: options.addGenerationPrompt ?? true,
    ...(options.specialTokens ?? {}),
  });
}
