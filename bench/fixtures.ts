// A realistic opted-in pod as the API server sends it for a CiviCRM demo site: many env vars,
// labels, annotations, probes, a sidecar and an init container; 10-20 KB of JSON. Shared by the
// admission benchmark and the webhook integration tests so both measure the same thing.

export type Json = { [key: string]: unknown };

/**
 * A pod the size issue 13 measured (a ~3.7 KB AdmissionReview; the answer was 13 KB, 29 ops):
 * the CiviCRM web container and its cron sidecar with 6 settings and the database password each, the
 * Helm labels and a config checksum; `civicrmPod()` is the 17 KiB variant (86 variables, 3 containers
 * and an init container, tolerations).
 */
export function compactCivicrmPod(options: { name?: string; namespace?: string; optIn?: boolean } = {}): Json {
  const pod = civicrmPod({ ...options, padEnv: 0, settings: 6 }) as { metadata: Json; spec: Json & { containers: Json[] } };
  const keepEnv = (env: unknown): Json[] => (env as Json[]).filter((e) => !e['valueFrom'] || String(e['name']).endsWith('DB_PASSWORD'));
  pod.spec.containers = pod.spec.containers.slice(0, 2).map((c) => ({ ...c, env: keepEnv(c['env']) }));
  delete pod.spec['initContainers'];
  delete pod.spec['tolerations'];
  const annotations = pod.metadata['annotations'] as Json;
  pod.metadata['annotations'] = { 'checksum/config': annotations['checksum/config'], 'demomail/php-ini': 'true' };
  const labels = pod.metadata['labels'] as Json;
  pod.metadata['labels'] = Object.fromEntries(Object.entries(labels).filter(([k]) => ['app', 'app.kubernetes.io/instance', 'app.kubernetes.io/managed-by', 'pod-template-hash', 'demomail/inject'].includes(k)));
  return pod;
}

export function civicrmPod(options: { name?: string; namespace?: string; optIn?: boolean; padEnv?: number; settings?: number } = {}): Json {
  const namespace = options.namespace ?? 'civicrm-demo';
  const env: Json[] = [];
  const settings: Array<[string, string]> = [
    ['CIVICRM_UF', 'WordPress'],
    ['CIVICRM_DB_HOST', 'mariadb.civicrm-demo.svc.cluster.local'],
    ['CIVICRM_DB_PORT', '3306'],
    ['CIVICRM_DB_NAME', 'civicrm'],
    ['CIVICRM_SITE_KEY', 'k8s-demo-site-key-0123456789abcdef0123456789abcdef'],
    ['CIVICRM_DOMAIN_ID', '1'],
    ['WORDPRESS_DB_HOST', 'mariadb.civicrm-demo.svc.cluster.local:3306'],
    ['WORDPRESS_DB_NAME', 'wordpress'],
    ['WORDPRESS_TABLE_PREFIX', 'wp_'],
    ['WORDPRESS_DEBUG', '0'],
    ['PHP_MEMORY_LIMIT', '512M'],
    ['PHP_MAX_EXECUTION_TIME', '300'],
    ['PHP_UPLOAD_MAX_FILESIZE', '64M'],
    ['PHP_POST_MAX_SIZE', '64M'],
    ['APACHE_RUN_USER', 'www-data'],
    ['APACHE_RUN_GROUP', 'www-data'],
    ['TZ', 'Europe/Berlin'],
    ['LANG', 'en_US.UTF-8'],
    ['SITE_URL', 'https://demo.civicrm.example.org'],
    ['CIVICRM_CRON_KEY', 'cron-key-abcdef0123456789'],
  ];
  settings.splice(options.settings ?? settings.length);
  for (let i = 0; i < (options.padEnv ?? 60); i += 1) {
    settings.push([`CIVICRM_SETTING_${String(i).padStart(3, '0')}`, `value-${i}-${'x'.repeat(24)}`]);
  }
  for (const [name, value] of settings) env.push({ name, value });
  env.push(
    { name: 'WORDPRESS_DB_USER', valueFrom: { secretKeyRef: { name: 'mariadb-credentials', key: 'username' } } },
    { name: 'WORDPRESS_DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'mariadb-credentials', key: 'password' } } },
    { name: 'CIVICRM_DB_USER', valueFrom: { secretKeyRef: { name: 'mariadb-credentials', key: 'username' } } },
    { name: 'CIVICRM_DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'mariadb-credentials', key: 'password' } } },
    { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
    { name: 'POD_IP', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } } },
  );
  const labels: Json = {
    app: 'civicrm',
    'app.kubernetes.io/name': 'civicrm',
    'app.kubernetes.io/instance': 'demo',
    'app.kubernetes.io/version': '5.75.0',
    'app.kubernetes.io/component': 'web',
    'app.kubernetes.io/part-of': 'civicrm-demo-platform',
    'app.kubernetes.io/managed-by': 'Helm',
    'helm.sh/chart': 'civicrm-1.4.2',
    'pod-template-hash': '7d9f8c6b5d',
    tier: 'frontend',
  };
  if (options.optIn ?? true) labels['demomail/inject'] = 'true';
  const annotations: Json = {
    'kubectl.kubernetes.io/default-container': 'civicrm',
    'checksum/config': 'f'.repeat(64),
    'checksum/secret': 'e'.repeat(64),
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': '9117',
    'demomail/php-ini': 'true',
    'cluster-autoscaler.kubernetes.io/safe-to-evict': 'true',
  };
  const resources = { requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '1Gi' } };
  const securityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${options.name ?? 'civicrm-web-7d9f8c6b5d'}-`,
      namespace,
      labels,
      annotations,
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'civicrm-web-7d9f8c6b5d', uid: '6f1c1d2e-0000-4c1a-9d0e-8a9b7c6d5e4f', controller: true, blockOwnerDeletion: true },
      ],
    },
    spec: {
      serviceAccountName: 'civicrm',
      enableServiceLinks: false,
      securityContext: { fsGroup: 33, runAsUser: 33, runAsGroup: 33 },
      initContainers: [
        {
          name: 'wait-for-db',
          image: 'mariadb:11.4',
          command: ['sh', '-c', 'until mariadb-admin ping -h "$CIVICRM_DB_HOST" --silent; do sleep 2; done'],
          env: env.slice(0, 8),
          resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '64Mi' } },
          securityContext,
        },
      ],
      containers: [
        {
          name: 'civicrm',
          image: 'ghcr.io/example/civicrm-wordpress:5.75.0-php8.2',
          imagePullPolicy: 'IfNotPresent',
          ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
          env,
          envFrom: [{ configMapRef: { name: 'civicrm-config' } }, { secretRef: { name: 'civicrm-secrets', optional: true } }],
          volumeMounts: [
            { name: 'files', mountPath: '/var/www/html/wp-content/uploads' },
            { name: 'civicrm-settings', mountPath: '/var/www/html/wp-content/uploads/civicrm/civicrm.settings.php', subPath: 'civicrm.settings.php', readOnly: true },
            { name: 'tmp', mountPath: '/tmp' },
          ],
          readinessProbe: { httpGet: { path: '/wp-login.php', port: 'http' }, periodSeconds: 10, timeoutSeconds: 5 },
          livenessProbe: { tcpSocket: { port: 'http' }, initialDelaySeconds: 30, periodSeconds: 20 },
          resources,
          securityContext,
        },
        {
          name: 'cron',
          image: 'ghcr.io/example/civicrm-wordpress:5.75.0-php8.2',
          command: ['/usr/local/bin/civicrm-cron-loop'],
          env,
          volumeMounts: [{ name: 'files', mountPath: '/var/www/html/wp-content/uploads' }],
          resources: { requests: { cpu: '20m', memory: '128Mi' }, limits: { memory: '256Mi' } },
          securityContext,
        },
        {
          name: 'apache-exporter',
          image: 'quay.io/prometheuscommunity/apache-exporter:v1.0.8',
          args: ['--scrape_uri=http://localhost:8080/server-status?auto'],
          ports: [{ name: 'metrics', containerPort: 9117 }],
          resources: { requests: { cpu: '5m', memory: '16Mi' }, limits: { memory: '32Mi' } },
          securityContext,
        },
      ],
      volumes: [
        { name: 'files', persistentVolumeClaim: { claimName: 'civicrm-files' } },
        { name: 'civicrm-settings', secret: { secretName: 'civicrm-settings', defaultMode: 0o440 } },
        { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
        { name: 'kube-api-access-abcde', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }, { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }] } },
      ],
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      schedulerName: 'default-scheduler',
      priority: 0,
    },
  };
}

/** The AdmissionReview the API server sends for a pod CREATE (or another operation/kind). */
export function admissionReview(
  object: Json | undefined,
  options: { uid?: string; namespace?: string; operation?: string; kind?: string; resource?: string; group?: string } = {},
): Json {
  const kind = options.kind ?? 'Pod';
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: options.uid ?? '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: options.group ?? '', version: 'v1', kind },
      resource: { group: options.group ?? '', version: 'v1', resource: options.resource ?? 'pods' },
      requestKind: { group: options.group ?? '', version: 'v1', kind },
      requestResource: { group: options.group ?? '', version: 'v1', resource: options.resource ?? 'pods' },
      namespace: options.namespace ?? 'civicrm-demo',
      operation: options.operation ?? 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: 'a1b2', groups: ['system:serviceaccounts', 'system:authenticated'] },
      object,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  };
}
