{{/* The CICD namespace: runners, their state and the build Jobs. */}}
{{- define "ci-runner.cicdNamespace" -}}
{{- default .Release.Namespace .Values.runner.cicdNamespace -}}
{{- end -}}

{{/* Name of one app's objects (CronJob, ServiceAccount, Roles): <release>-<app>, max 52 chars
     (a CronJob name leaves 11 characters for its Jobs' suffix). Call with (dict "root" $ "app" $app). */}}
{{- define "ci-runner.appName" -}}
{{- printf "%s-%s" .root.Release.Name .app.name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* The helm release an app deploys: apps[].release, else the app's name. */}}
{{- define "ci-runner.appRelease" -}}
{{- default .name .release -}}
{{- end -}}

{{- define "ci-runner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; add app.kubernetes.io/component per object. */}}
{{- define "ci-runner.labels" -}}
helm.sh/chart: {{ include "ci-runner.chart" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ci-runner
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* One runner setting for an app: apps[].runner.<key> when given, else runner.<key>.
     Call with (dict "root" $ "app" $app "key" "maxRetries"). hasKey keeps false and 0 overrides. */}}
{{- define "ci-runner.setting" -}}
{{- $own := .app.runner | default dict -}}
{{- if hasKey $own .key -}}
{{- index $own .key -}}
{{- else -}}
{{- index .root.Values.runner .key -}}
{{- end -}}
{{- end -}}

{{/* The runner image reference: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "ci-runner.image" -}}
{{- $image := .Values.runner.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Fails with a clear message when two apps would share a name or a release (and so a state
     ConfigMap and Lease). Renders nothing. */}}
{{- define "ci-runner.checkApps" -}}
{{- $names := dict -}}
{{- $releases := dict -}}
{{- range $i, $app := .Values.apps -}}
{{- $name := include "ci-runner.appName" (dict "root" $ "app" $app) -}}
{{- if hasKey $names $name -}}
{{- fail (printf "apps[%d] (%s): another app already uses the object name %q; give it a different name" $i $app.name $name) -}}
{{- end -}}
{{- $_ := set $names $name true -}}
{{- $release := include "ci-runner.appRelease" $app -}}
{{- if hasKey $releases $release -}}
{{- fail (printf "apps[%d] (%s): release %q is used by another app; each app needs its own release (its state ConfigMap is ci-runner-<release>)" $i $app.name $release) -}}
{{- end -}}
{{- $_ := set $releases $release true -}}
{{- end -}}
{{- end -}}
