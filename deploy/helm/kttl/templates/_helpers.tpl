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
{{- else if eq .Values.scope "namespace" -}}
{{- /* A namespace-only install may not list StorageClasses (cluster-scoped): cannot know. */ -}}
offline
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
{{/* scope: namespace — the namespaces kttl watches (controller.namespaces, else the release's), as JSON. */}}
{{- define "kttl.watchedNamespaces" -}}
{{- if .Values.controller.namespaces -}}
{{- toJson .Values.controller.namespaces -}}
{{- else -}}
{{- toJson (list .Release.Namespace) -}}
{{- end -}}
{{- end -}}

{{- define "kttl.archiveApi" -}}
{{- if and .Values.archive.api.enabled (ne (include "kttl.archive" . | fromJson).mode "off") -}}
true
{{- end -}}
{{- end -}}

{{- define "kttl.archiveApiName" -}}
{{- printf "%s-archive-api" (include "kttl.fullname" .) -}}
{{- end -}}


{{/*
The chart's certificate: the webhook's secret and Certificate (which the archive API shares), or
the archive API's own when the webhook is off.
*/}}
{{- define "kttl.tlsSecretName" -}}
{{- ternary (include "kttl.webhookSecretName" .) (printf "%s-archive-api-tls" (include "kttl.fullname" .)) .Values.webhook.enabled -}}
{{- end -}}

{{- define "kttl.certificateName" -}}
{{- ternary (include "kttl.webhookName" .) (include "kttl.archiveApiName" .) .Values.webhook.enabled -}}
{{- end -}}

{{/*
The chart's serving certificate, ONE for the webhook and the archive API (the same CA in the
MutatingWebhookConfiguration's and the APIService's caBundle): its DNS names, the webhook's Service
names first (when the webhook is on), then the archive API's (when it is served), then
webhook.extraDnsNames. As JSON.
*/}}
{{- define "kttl.tlsNames" -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list -}}
{{- $services := list -}}
{{- if .Values.webhook.enabled -}}
{{- $services = append $services (include "kttl.webhookName" .) -}}
{{- end -}}
{{- if include "kttl.archiveApi" . -}}
{{- $services = append $services (include "kttl.archiveApiName" .) -}}
{{- end -}}
{{- range $services -}}
{{- $names = concat $names (list . (printf "%s.%s" . $ns) (printf "%s.%s.svc" . $ns) (printf "%s.%s.svc.cluster.local" . $ns)) -}}
{{- end -}}
{{- concat $names .Values.webhook.extraDnsNames | toJson -}}
{{- end -}}

{{/*
The self-signed pair (webhook.certManager off), made ONCE per render and kept in .Values (both
templates/webhook-configuration.yaml and templates/archive-api.yaml need the same CA); an existing
secret is reused when it was made for the same names (its `names` key), so an upgrade that adds the
archive API gets a certificate naming its Service. As JSON: caBundle, crt, key, names (base64).
*/}}
{{- define "kttl.tls" -}}
{{- if not (hasKey .Values "__kttlTls") -}}
{{- $w := .Values.webhook -}}
{{- $names := include "kttl.tlsNames" . | fromJsonArray -}}
{{- $want := join "," $names -}}
{{- $d := dict "caBundle" "" "crt" "" "key" "" "names" ($want | b64enc) -}}
{{- if not $w.certManager.enabled -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "kttl.tlsSecretName" .) -}}
{{- $data := dict -}}
{{- if $existing -}}{{- $data = default dict $existing.data -}}{{- end -}}
{{- $have := "" -}}
{{- if hasKey $data "names" -}}{{- $have = index $data "names" | b64dec -}}{{- end -}}
{{- $olderChart := and (eq $have "") (not (include "kttl.archiveApi" .)) -}}
{{- if and (hasKey $data "ca.crt") (or (eq $have $want) $olderChart) -}}
{{- $_ := set $d "caBundle" (index $data "ca.crt") -}}
{{- $_ := set $d "crt" (index $data "tls.crt") -}}
{{- $_ := set $d "key" (index $data "tls.key") -}}
{{- else -}}
{{- $ca := genCA (printf "%s-%s-ca" (include "kttl.fullname" .) (ternary "webhook" "archive-api" $w.enabled)) (int $w.certificateValidityDays) -}}
{{- $cert := genSignedCert (index $names 2) $w.extraIpAddresses $names (int $w.certificateValidityDays) $ca -}}
{{- $_ := set $d "caBundle" ($ca.Cert | b64enc) -}}
{{- $_ := set $d "crt" ($cert.Cert | b64enc) -}}
{{- $_ := set $d "key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Values "__kttlTls" $d -}}
{{- end -}}
{{- index .Values "__kttlTls" | toJson -}}
{{- end -}}

{{/*
The certificate's objects, rendered once: by templates/webhook-configuration.yaml when the webhook
is on, else by templates/archive-api.yaml. cert-manager (webhook.certManager): an Issuer (unless an
issuerRef is given) and a Certificate whose cainjector fills both caBundles; else the Secret.
*/}}
{{- define "kttl.certificateObjects" -}}
{{- $w := .Values.webhook -}}
{{- $fullname := include "kttl.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $secretName := include "kttl.tlsSecretName" . -}}
{{- $names := include "kttl.tlsNames" . | fromJsonArray -}}
{{- $component := ternary "webhook" "archive-api" $w.enabled -}}
{{- if $w.certManager.enabled }}
{{- if not $w.certManager.issuerRef }}
# A self-signed Issuer for the chart's serving certificate (cert-manager renews it; the cainjector
# keeps the caBundles of the MutatingWebhookConfiguration and the APIService in step).
apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: {{ $fullname }}-selfsigned
  namespace: {{ $ns }}
  labels:
    {{- include "kttl.labels" . | nindent 4 }}
    app.kubernetes.io/component: {{ $component }}
spec:
  selfSigned: {}
---
{{- end }}
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: {{ include "kttl.certificateName" . }}
  namespace: {{ $ns }}
  labels:
    {{- include "kttl.labels" . | nindent 4 }}
    app.kubernetes.io/component: {{ $component }}
spec:
  secretName: {{ $secretName }}
  commonName: {{ index $names 2 }}
  dnsNames:
    {{- range $names }}
    - {{ . }}
    {{- end }}
  {{- with $w.extraIpAddresses }}
  ipAddresses:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  privateKey:
    algorithm: ECDSA
    size: 256
    rotationPolicy: Always
  issuerRef:
    {{- if $w.certManager.issuerRef }}
    kind: {{ default "Issuer" $w.certManager.issuerRef.kind }}
    name: {{ required "webhook.certManager.issuerRef.name is required with an issuerRef" $w.certManager.issuerRef.name }}
    group: {{ default "cert-manager.io" $w.certManager.issuerRef.group }}
    {{- else }}
    kind: Issuer
    name: {{ $fullname }}-selfsigned
    group: cert-manager.io
    {{- end }}
---
{{- else }}
{{- $tls := include "kttl.tls" . | fromJson }}
# The chart's serving certificate and its CA (the webhook's{{ if include "kttl.archiveApi" . }} and the archive API's{{ end }}), generated by the
# chart (helm install/upgrade reuse the existing secret; `helm template` makes a new pair each time).
apiVersion: v1
kind: Secret
metadata:
  name: {{ $secretName }}
  namespace: {{ $ns }}
  labels:
    {{- include "kttl.labels" . | nindent 4 }}
    app.kubernetes.io/component: {{ $component }}
type: kubernetes.io/tls
data:
  ca.crt: {{ $tls.caBundle }}
  tls.crt: {{ $tls.crt }}
  tls.key: {{ $tls.key }}
  names: {{ $tls.names }}
---
{{- end }}
{{- end -}}
