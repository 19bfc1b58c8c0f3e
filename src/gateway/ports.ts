// The gateway's listening ports in the pod (Services smtpdemo and demomail-ui point at them).
export const GATEWAY_PORTS = Object.freeze({ smtp: 2525, submission: 2587, smtps: 2465, http: 8025 });
