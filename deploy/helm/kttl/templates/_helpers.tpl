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
