{{/*
Helpers. Every object's metadata carries: app.kubernetes.io/name (the component's name, as in
manifests/), app.kubernetes.io/component where manifests/ has one, app.kubernetes.io/part-of: demomail,
Helm's labels (chart, instance, managed-by, version) and commonLabels. Pod templates get the first three
only: Helm's labels there would restart every pod on each chart version bump.
*/}}

{{- define "demomail.namespace" -}}
{{- .Values.namespace.name -}}
{{- end -}}

{{/* Helm's own labels; test/chart.test.ts strips exactly these when comparing with manifests/. */}}
{{- define "demomail.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/*
Pod-template labels: (dict "ctx" . "name" "demomail-webhook" "component" "webhook").
*/}}
{{- define "demomail.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
app.kubernetes.io/part-of: demomail
{{- end -}}

{{/*
Object metadata: (dict "ctx" . "name" "demomail-webhook" "labelName" "demomail-webhook" "component" "webhook"
"namespaced" true "labels" (dict …) "annotations" (dict …)). labelName defaults to name.
*/}}
{{- define "demomail.metadata" -}}
{{- $ctx := .ctx -}}
name: {{ .name }}
{{- if .namespaced }}
namespace: {{ include "demomail.namespace" $ctx }}
{{- end }}
labels:
  {{- include "demomail.selectorLabels" (dict "name" (default .name .labelName) "component" .component) | nindent 2 }}
  {{- include "demomail.helmLabels" $ctx | nindent 2 }}
  {{- with .labels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with $ctx.Values.commonLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- $annotations := merge (dict) (.annotations | default dict) ($ctx.Values.commonAnnotations | default dict) }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* registry/repository:tag@digest; tag defaults to appVersion when `appVersion` is passed. */}}
{{- define "demomail.imageRef" -}}
{{- $repo := .image.repository -}}
{{- if .image.registry }}{{ $repo = printf "%s/%s" .image.registry .image.repository }}{{ end -}}
{{- $tag := .image.tag | default .appVersion -}}
{{- if and $tag .image.digest -}}
{{ $repo }}:{{ $tag }}@{{ .image.digest }}
{{- else if .image.digest -}}
{{ $repo }}@{{ .image.digest }}
{{- else -}}
{{ $repo }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{- define "demomail.image" -}}
{{- include "demomail.imageRef" (dict "image" .Values.image "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{- define "demomail.mailserverImage" -}}
{{- include "demomail.imageRef" (dict "image" .Values.mailserver.image "appVersion" "") -}}
{{- end -}}

{{/* envFrom of every demomail container: the settings as DEMOMAIL_<KEY>. */}}
{{- define "demomail.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ .Values.names.config }}
    prefix: DEMOMAIL_
{{- end -}}

{{- define "demomail.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Scheduling fields of a component (.Values.webhook or .Values.bootstrap). */}}
{{- define "demomail.scheduling" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The pod spec of `demomail bootstrap` (hook Job and CronJob) and `demomail cleanup`:
(dict "ctx" . "args" (list "bootstrap") "serviceAccount" "demomail-bootstrap").
*/}}
{{- define "demomail.bootstrapPodSpec" -}}
{{- $ctx := .ctx -}}
{{- $b := $ctx.Values.bootstrap -}}
serviceAccountName: {{ .serviceAccount }}
automountServiceAccountToken: true
enableServiceLinks: false
restartPolicy: Never
{{- include "demomail.imagePullSecrets" $ctx }}
{{- with $b.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- include "demomail.scheduling" $b }}
containers:
  - name: {{ .container | default "bootstrap" }}
    image: {{ include "demomail.image" $ctx }}
    imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
    args: {{ toJson .args }}
    {{- include "demomail.envFrom" $ctx | nindent 4 }}
    {{- with $b.resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $b.containerSecurityContext }}
    securityContext:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 16Mi
{{- end -}}

{{/* The namespaceSelector of one webhook entry with the user's extra conditions (webhook.namespaceSelector). */}}
{{- define "demomail.webhookSelector" -}}
{{- $labels := merge (dict) (.base.matchLabels | default dict) (.extra.matchLabels | default dict) -}}
{{- $expressions := concat (.base.matchExpressions | default list) (.extra.matchExpressions | default list) -}}
{{- with $labels }}
matchLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $expressions }}
matchExpressions:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* UI_AUTH_SECRET: the Ingress's basic-auth Secret when the Ingress is on (required then), else names.uiAuthSecret. */}}
{{- define "demomail.uiAuthSecret" -}}
{{- if .Values.viewer.ingress.enabled -}}
{{- required "viewer.ingress.enabled=true needs viewer.ingress.basicAuth.existingSecret: the name of a Secret (keys username, password) you created in the demomail namespace; the viewer shows every captured message, so it is never exposed without basic auth" .Values.viewer.ingress.basicAuth.existingSecret -}}
{{- else -}}
{{- .Values.names.uiAuthSecret -}}
{{- end -}}
{{- end -}}
