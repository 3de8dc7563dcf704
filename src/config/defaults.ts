// Defaults that the CLI needs without loading the schema (keeps `weir status` start-up light).
export const DEFAULT_CONTROL_SOCKET = '/run/weir/weir.sock';
