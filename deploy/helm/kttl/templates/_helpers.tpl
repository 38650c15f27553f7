{{/* Names and labels shared by every template. */}}

{{- define "kttl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release name when it contains the chart name (release `kttl` → `kttl`), else <release>-kttl. */}}
{{- define "kttl.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kttl.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kttl.labels" -}}
helm.sh/chart: {{ include "kttl.chart" . }}
{{ include "kttl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "kttl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kttl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kttl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kttl.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kttl.webhookServiceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-webhook" (include "kttl.fullname" .)) .Values.serviceAccount.webhookName -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.webhookName -}}
{{- end -}}
{{- end -}}

{{- define "kttl.leaseName" -}}
{{- default (include "kttl.fullname" .) .Values.controller.leaderElection.leaseName -}}
{{- end -}}

{{- define "kttl.webhookName" -}}
{{- printf "%s-webhook" (include "kttl.fullname" .) -}}
{{- end -}}

{{- define "kttl.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "kttl.fullname" .) -}}
{{- end -}}

{{- define "kttl.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Restricted pod security: non-root, no privilege escalation, read-only root filesystem. */}}
{{- define "kttl.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "kttl.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "kttl.archiveClaimName" -}}
{{- printf "%s-archive" (include "kttl.fullname" .) -}}
{{- end -}}

{{/*
Whether SQLite's claim can bind: "class" (archive.storage.storageClassName set), "existing" (the
claim is already there: an upgrade), "default" (a StorageClass annotated as the default), "offline"
(lookup answered nothing: `helm template` or a client-side dry run, which cannot know — assume it
can), or "" (a cluster without a default StorageClass: the claim would stay Pending, and the pod
with it).
*/}}
{{- define "kttl.archiveStorage" -}}
{{- if .Values.archive.storage.storageClassName -}}
class
{{- else if lookup "v1" "PersistentVolumeClaim" .Release.Namespace (include "kttl.archiveClaimName" .) -}}
existing
{{- else -}}
{{- $classes := lookup "storage.k8s.io/v1" "StorageClass" "" "" -}}
{{- if not $classes -}}
offline
{{- else -}}
{{- $default := "" -}}
{{- range ($classes.items | default list) -}}
{{- $ann := .metadata.annotations | default dict -}}
{{- if or (eq (index $ann "storageclass.kubernetes.io/is-default-class" | default "") "true") (eq (index $ann "storageclass.beta.kubernetes.io/is-default-class" | default "") "true") -}}
{{- $default = "default" -}}
{{- end -}}
{{- end -}}
{{- $default -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The archive as deployed, as JSON: mode (what --archive gets), backend (sqlite, postgres or "") and
fallback (why best-effort fell back to off, or ""). docs/decisions.md: without a default
StorageClass, best-effort falls back to off (NOTES warns) and required fails the install.
*/}}
{{- define "kttl.archive" -}}
{{- $a := .Values.archive -}}
{{- $mode := $a.mode -}}
{{- $backend := "" -}}
{{- $fallback := "" -}}
{{- if and $a.dsn $a.existingSecret -}}
{{- fail "archive.dsn and archive.existingSecret are both set: choose one (existingSecret keeps the DSN's password out of the Deployment)" -}}
{{- end -}}
{{- if ne $mode "off" -}}
{{- if or $a.dsn $a.existingSecret -}}
{{- $backend = "postgres" -}}
{{- else if include "kttl.archiveStorage" . -}}
{{- $backend = "sqlite" -}}
{{- else if eq $mode "required" -}}
{{- fail (printf "archive.mode=required with SQLite needs a PersistentVolumeClaim, and this cluster has no default StorageClass (none annotated storageclass.kubernetes.io/is-default-class: \"true\"): the claim %s would stay Pending and kttl with it. Set archive.storage.storageClassName, or use PostgreSQL (archive.existingSecret), or archive.mode=best-effort (falls back to off)" (include "kttl.archiveClaimName" .)) -}}
{{- else -}}
{{- $mode = "off" -}}
{{- $fallback = printf "no default StorageClass in this cluster, so the SQLite claim %s would stay Pending (and kttl with it)" (include "kttl.archiveClaimName" .) -}}
{{- end -}}
{{- end -}}
{{- dict "mode" $mode "backend" $backend "fallback" $fallback | toJson -}}
{{- end -}}

{{/* The archive's read API is served and registered: the archive is on and archive.api.enabled. */}}
{{- define "kttl.archiveApi" -}}
{{- if and .Values.archive.api.enabled (ne (include "kttl.archive" . | fromJson).mode "off") -}}
true
{{- end -}}
{{- end -}}

{{- define "kttl.archiveApiName" -}}
{{- printf "%s-archive-api" (include "kttl.fullname" .) -}}
{{- end -}}

{{- define "kttl.archiveApiSecretName" -}}
{{- printf "%s-archive-api-tls" (include "kttl.fullname" .) -}}
{{- end -}}
